package apiserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferry-migrate/ferry"
)

// Job actions, in the API's (and the workflow's Update) names.
const (
	ActionStart       = "start"
	ActionPause       = "pause"
	ActionResume      = "resume"
	ActionRemirror    = "remirror"
	ActionTestCutover = "test-cutover"
	ActionEndTest     = "end-test"
	ActionCutover     = "cutover"
	ActionRollback    = "rollback"
	ActionCancel      = "cancel"
)

// JobActions returns every job action.
func JobActions() []string {
	return []string{ActionStart, ActionPause, ActionResume, ActionRemirror, ActionTestCutover,
		ActionEndTest, ActionCutover, ActionRollback, ActionCancel}
}

// Progress is a job's live progress as the workflow reports it.
type Progress struct {
	Phase          string  `json:"phase,omitempty" doc:"mirror, sync, verify or cutover"`
	BytesDone      int64   `json:"bytesDone"`
	BytesTotal     int64   `json:"bytesTotal"`
	FilesDone      int64   `json:"filesDone"`
	FilesTotal     int64   `json:"filesTotal"`
	RateBytesPerS  float64 `json:"rateBytesPerSecond" doc:"current transfer rate"`
	ETASeconds     float64 `json:"etaSeconds" doc:"estimated seconds to the end of the phase; 0 when unknown"`
	LagSeconds     float64 `json:"lagSeconds" doc:"replication lag during sync"`
	BacklogEntries int64   `json:"backlogEntries" doc:"changes captured but not yet applied"`
	BacklogBytes   int64   `json:"backlogBytes"`
}

// JobStatus is the live status of a job's workflow.
type JobStatus struct {
	JobID    string         `json:"jobId"`
	State    ferry.JobState `json:"state"`
	Reason   string         `json:"reason,omitempty"`
	Progress Progress       `json:"progress"`
	// Waiting names the host the job waits for while it is offline.
	Waiting   string    `json:"waitingFor,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Terminal reports whether the job can no longer change state.
func (s *JobStatus) Terminal() bool {
	switch s.State {
	case ferry.JobCutoverComplete, ferry.JobFailed, ferry.JobCancelled:
		return true
	}
	return false
}

// JobEngine runs jobs. The Temporal implementation is TemporalEngine.
type JobEngine interface {
	// Launch starts the job's workflow in state pending. Returns ECONFLICT
	// if a workflow with the job's ID already runs.
	Launch(ctx context.Context, job *ferry.Job) error
	// Action runs an action (start, pause, …) on the job, by actor. Returns
	// ENOTFOUND if the workflow does not exist and ECONFLICT, naming the
	// state, when the action is illegal in the current state.
	Action(ctx context.Context, jobID, action, actor string) error
	// Status returns the job's live status. Returns ENOTFOUND if the
	// workflow does not exist.
	Status(ctx context.Context, jobID string) (*JobStatus, error)
	// Remove ends the job's workflow (if it runs) and, when removeTargetData,
	// deletes what it copied to the target. Returns nil if no workflow
	// exists.
	Remove(ctx context.Context, jobID string, removeTargetData bool) error
}

// Names of the migration workflow's Temporal handlers. They must match
// package workflows.
const (
	MigrationWorkflowName = "MigrationWorkflow"
	StatusQueryName       = "status"
)

// TemporalEngine is the JobEngine over a Temporal client.
type TemporalEngine struct {
	Client    client.Client
	TaskQueue string
	// Input builds the workflow's input from the job; nil passes a
	// MigrationInput.
	Input func(job *ferry.Job) any
}

// MigrationInput is the default workflow input: the job's ID (the workflow
// loads the job through a controller activity).
type MigrationInput struct {
	JobID string
}

// ActionInput is the argument of every action Update.
type ActionInput struct {
	Actor            string
	RemoveTargetData bool `json:",omitempty"`
}

var _ JobEngine = (*TemporalEngine)(nil)

// Launch implements JobEngine.
func (e *TemporalEngine) Launch(ctx context.Context, job *ferry.Job) error {
	var in any = MigrationInput{JobID: job.ID}
	if e.Input != nil {
		in = e.Input(job)
	}
	_, err := e.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       job.ID,
		TaskQueue:                e.TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, MigrationWorkflowName, in)
	if err != nil {
		return temporalErr(err, job.ID)
	}
	return nil
}

// Action implements JobEngine.
func (e *TemporalEngine) Action(ctx context.Context, jobID, action, actor string) error {
	h, err := e.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   jobID,
		UpdateName:   action,
		Args:         []any{ActionInput{Actor: actor}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return temporalErr(err, jobID)
	}
	if err := h.Get(ctx, nil); err != nil {
		return temporalErr(err, jobID)
	}
	return nil
}

// Status implements JobEngine.
func (e *TemporalEngine) Status(ctx context.Context, jobID string) (*JobStatus, error) {
	v, err := e.Client.QueryWorkflow(ctx, jobID, "", StatusQueryName)
	if err != nil {
		return nil, temporalErr(err, jobID)
	}
	var st JobStatus
	if err := v.Get(&st); err != nil {
		return nil, fmt.Errorf("decode status of job %s: %w", jobID, err)
	}
	st.JobID = jobID
	return &st, nil
}

// Remove implements JobEngine.
func (e *TemporalEngine) Remove(ctx context.Context, jobID string, removeTargetData bool) error {
	err := e.Client.TerminateWorkflow(ctx, jobID, "", "job deleted")
	if err != nil {
		if _, ok := errors.AsType[*serviceerror.NotFound](err); ok {
			return nil
		}
		return fmt.Errorf("terminate job %s: %w", jobID, err)
	}
	// Removing target data is a host-bound activity the workflow owns; a
	// terminated workflow cannot run it, so it is left to the workflow's
	// cancel path when available.
	_ = removeTargetData
	return nil
}

// temporalErr classifies a Temporal client error for the API.
func temporalErr(err error, jobID string) error {
	if _, ok := errors.AsType[*serviceerror.NotFound](err); ok {
		return ferry.Errorf(ferry.ENOTFOUND, "job %s has no running workflow", jobID)
	}
	if _, ok := errors.AsType[*serviceerror.WorkflowExecutionAlreadyStarted](err); ok {
		return ferry.Errorf(ferry.ECONFLICT, "job %s already has a workflow", jobID)
	}
	if ae, ok := errors.AsType[*temporal.ApplicationError](err); ok {
		// Update validators reject illegal actions with an application
		// error whose message names the state.
		return ferry.Errorf(ferry.ECONFLICT, "%s", ae.Message())
	}
	if _, ok := errors.AsType[*serviceerror.InvalidArgument](err); ok {
		return ferry.Errorf(ferry.ECONFLICT, "%s", err.Error())
	}
	return fmt.Errorf("temporal: job %s: %w", jobID, err)
}
