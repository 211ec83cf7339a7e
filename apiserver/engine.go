package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/workflows"
)

// Job actions, in the API's (and the workflow's Update) names.
const (
	ActionStart       = workflows.UpdateStart
	ActionPause       = workflows.UpdatePause
	ActionResume      = workflows.UpdateResume
	ActionRemirror    = workflows.UpdateRemirror
	ActionTestCutover = workflows.UpdateTestCutover
	ActionEndTest     = workflows.UpdateEndTest
	ActionCutover     = workflows.UpdateCutover
	ActionRollback    = workflows.UpdateRollback
	ActionCancel      = workflows.UpdateCancel
)

// JobActions returns every job action.
func JobActions() []string { return workflows.Actions() }

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
	BytesSent      int64   `json:"bytesSent" doc:"bytes that crossed the data channel for this job so far (after compression)"`
	AppliedTotal   int64   `json:"appliedTotal" doc:"changes applied on the target during sync"`
}

// JobStatus is the live status of a job's workflow.
type JobStatus struct {
	JobID    string         `json:"jobId"`
	State    ferry.JobState `json:"state"`
	Reason   string         `json:"reason,omitempty"`
	Progress Progress       `json:"progress"`
	// Waiting names the host the job waits for while it is offline.
	Waiting string `json:"waitingFor,omitempty"`
	// TestPath is where a test cutover put its usable copy on the target.
	TestPath string `json:"testPath,omitempty" doc:"During a test cutover: the directory on the target holding the usable copy"`
	// PreviousPath keeps the target's former contents after a cutover.
	PreviousPath string    `json:"previousPath,omitempty" doc:"After a cutover: where the target's previous contents are kept for rollback"`
	UpdatedAt    time.Time `json:"updatedAt,omitzero"`
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
	// deletes what it copied to the target (the job's staging directory on
	// the target host; the live target path stays). Returns nil if no
	// workflow exists, and an error when the target data could not be
	// removed (then calling it again is safe).
	Remove(ctx context.Context, job *ferry.Job, removeTargetData bool) error
	// UpdateOptions delivers a job's changed options (bandwidth schedule,
	// lag threshold, host offline grace, cutover hooks) to its running
	// workflow, by actor. Returns ENOTFOUND if no workflow runs and
	// ECONFLICT when the workflow refuses the change in its state.
	// The result says whether a running transfer took a new bandwidth
	// schedule.
	UpdateOptions(ctx context.Context, job *ferry.Job, actor string) (workflows.OptionsResult, error)
}

// TemporalEngine is the JobEngine over a Temporal client and the
// MigrationWorkflow of package workflows.
type TemporalEngine struct {
	Client client.Client
	// TaskQueue of the control-plane worker (default
	// workflows.ControlTaskQueue).
	TaskQueue string
	// TargetAddr returns the data-channel address (host:port) of the job's
	// target agent. Nil uses Hosts: the address the target agent advertised
	// (ferry.Host.DataAddr), else the host's first address and
	// DefaultAgentPort.
	TargetAddr func(ctx context.Context, job *ferry.Job) (string, error)
	Hosts      HostFinder
	// Tune adjusts the workflow spec before the workflow starts (tests
	// shorten its timings); nil leaves it.
	Tune func(*workflows.JobSpec)
}

// HostFinder finds a host; *store.DB is one.
type HostFinder interface {
	// FindHostByID returns ENOTFOUND if the host does not exist.
	FindHostByID(ctx context.Context, id string) (*ferry.Host, error)
}

// DefaultAgentPort is the agents' default data-channel port (ferry agent
// --listen).
const DefaultAgentPort = "7780"

var _ JobEngine = (*TemporalEngine)(nil)

// Bounds on calls that need a running worker.
const (
	actionTimeout = 30 * time.Second
	queryTimeout  = 10 * time.Second
)

func (e *TemporalEngine) targetAddr(ctx context.Context, job *ferry.Job) (string, error) {
	if e.TargetAddr != nil {
		return e.TargetAddr(ctx, job)
	}
	if e.Hosts == nil {
		return "", fmt.Errorf("no way to find the target agent's address: set TemporalEngine.TargetAddr or Hosts")
	}
	h, err := e.Hosts.FindHostByID(ctx, job.TargetHostID)
	if err != nil {
		return "", err
	}
	if h.DataAddr != "" {
		return h.DataAddr, nil
	}
	if len(h.Addresses) == 0 {
		return "", ferry.Errorf(ferry.EINVALID, "target host %s reported no address", h.ID)
	}
	return net.JoinHostPort(h.Addresses[0], DefaultAgentPort), nil
}

// Launch implements JobEngine.
func (e *TemporalEngine) Launch(ctx context.Context, job *ferry.Job) error {
	addr, err := e.targetAddr(ctx, job)
	if err != nil {
		return err
	}
	spec, err := workflows.SpecFromJob(job, addr)
	if err != nil {
		return err
	}
	if e.Tune != nil {
		e.Tune(&spec)
	}
	queue := e.queue()
	_, err = e.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       job.ID,
		TaskQueue:                queue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.MigrationWorkflow, workflows.MigrationInput{Spec: spec})
	if err != nil {
		return temporalErr(err, job.ID)
	}
	return nil
}

// Action implements JobEngine.
func (e *TemporalEngine) Action(ctx context.Context, jobID, action, actor string) error {
	// An Update waits for a worker; without one, give up instead of
	// holding the request forever.
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	h, err := e.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   jobID,
		UpdateName:   action,
		Args:         []any{workflows.ActionInput{Actor: actor}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return temporalErr(err, jobID)
	}
	var res workflows.ActionResult
	if err := h.Get(ctx, &res); err != nil {
		return temporalErr(err, jobID)
	}
	return nil
}

// Status implements JobEngine.
func (e *TemporalEngine) Status(ctx context.Context, jobID string) (*JobStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	// workflows.JobStatus overlays the running activity's latest
	// heartbeat, so bytes, rate, ETA, lag and backlog move during long
	// mirror and sync activities, not only when the workflow updates.
	ws, err := workflows.JobStatus(ctx, e.Client, jobID)
	if err != nil {
		return nil, temporalErr(err, jobID)
	}
	return statusFrom(jobID, &ws), nil
}

func statusFrom(jobID string, ws *workflows.Status) *JobStatus {
	p := ws.Progress
	st := &JobStatus{JobID: jobID, State: ws.State, Reason: ws.LastError, UpdatedAt: ws.StateSince,
		Progress: Progress{BytesDone: p.BytesDone, BytesTotal: p.BytesTotal, FilesDone: p.FilesDone,
			FilesTotal: p.FilesTotal, RateBytesPerS: p.RateBytes, ETASeconds: p.ETA.Seconds(),
			LagSeconds: float64(p.LagMillis) / 1000, BacklogEntries: p.BacklogRecords, BacklogBytes: p.BacklogBytes,
			BytesSent: p.BytesSent, AppliedTotal: p.AppliedTotal},
		TestPath: ws.TestPath, PreviousPath: ws.PreviousPath}
	switch ws.State {
	case ferry.JobMirroring:
		st.Progress.Phase = "mirror"
	case ferry.JobSyncing, ferry.JobReadyForCutover, ferry.JobTestCutover, ferry.JobPaused:
		st.Progress.Phase = "sync"
	case ferry.JobCuttingOver:
		st.Progress.Phase = "cutover"
	case ferry.JobPrechecking:
		st.Progress.Phase = "precheck"
	}
	if len(ws.WaitingForHosts) > 0 {
		st.Waiting = ws.WaitingForHosts[0].Host
	}
	return st
}

// removeDataWait bounds how long delete-job waits for the target's agent
// to delete the job's data.
const removeDataWait = time.Minute

// RemoveDataWorkflowID is the ID of the workflow that removes a deleted
// job's target data.
func RemoveDataWorkflowID(jobID string) string { return "remove-data-" + jobID }

// Remove implements JobEngine: it cancels the job's workflow if it still
// runs, terminates what remains of it and, when removeTargetData, runs
// workflows.RemoveJobDataWorkflow on the target host and waits for it (at
// most removeDataWait; a second call joins the same run).
func (e *TemporalEngine) Remove(ctx context.Context, job *ferry.Job, removeTargetData bool) error {
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	_ = e.Action(cctx, job.ID, workflows.UpdateCancel, "system")
	cancel()
	if err := e.Client.TerminateWorkflow(ctx, job.ID, "", "job deleted"); err != nil {
		if _, ok := errors.AsType[*serviceerror.NotFound](err); !ok {
			return fmt.Errorf("terminate job %s: %w", job.ID, err)
		}
	}
	if !removeTargetData {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, removeDataWait)
	defer cancel()
	run, err := e.Client.ExecuteWorkflow(wctx, client.StartWorkflowOptions{
		ID:                       RemoveDataWorkflowID(job.ID),
		TaskQueue:                e.queue(),
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
	}, workflows.RemoveJobDataWorkflow, workflows.RemoveJobDataInput{JobID: job.ID, TargetHost: job.TargetHostID,
		TargetPath: job.TargetPath, HostWait: removeDataWait})
	if err != nil {
		return fmt.Errorf("start removing the target data of job %s: %w", job.ID, err)
	}
	if err := run.Get(wctx, nil); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return problemf(http.StatusServiceUnavailable, ferry.EINTERNAL, fmt.Sprintf(
				"the target data of job %s is still being removed (workflow %s): is the target host's agent online? Delete again to wait for it",
				job.ID, RemoveDataWorkflowID(job.ID)))
		}
		return fmt.Errorf("remove the target data of job %s: %w", job.ID, err)
	}
	return nil
}

func (e *TemporalEngine) queue() string {
	if e.TaskQueue == "" {
		return workflows.ControlTaskQueue
	}
	return e.TaskQueue
}

// UpdateOptions implements JobEngine with the workflow's update-options
// Update.
func (e *TemporalEngine) UpdateOptions(ctx context.Context, job *ferry.Job, actor string) (workflows.OptionsResult, error) {
	var res workflows.OptionsResult
	in := workflows.OptionsFromJob(job, actor)
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	h, err := e.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   job.ID,
		UpdateName:   workflows.UpdateOptions,
		Args:         []any{in},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return res, temporalErr(err, job.ID)
	}
	if err := h.Get(ctx, &res); err != nil {
		return res, temporalErr(err, job.ID)
	}
	return res, nil
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
	if errors.Is(err, context.DeadlineExceeded) {
		return problemf(http.StatusServiceUnavailable, ferry.EINTERNAL,
			fmt.Sprintf("job %s did not answer in time: is the control-plane worker running?", jobID))
	}
	if _, ok := errors.AsType[*serviceerror.InvalidArgument](err); ok {
		return ferry.Errorf(ferry.ECONFLICT, "%s", err.Error())
	}
	return fmt.Errorf("temporal: job %s: %w", jobID, err)
}
