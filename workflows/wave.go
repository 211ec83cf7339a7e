package workflows

import (
	"fmt"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
)

// SignalJobState is the signal a job workflow sends to the workflow named in
// JobSpec.NotifyWorkflowID on every state change; its payload is a
// JobStateSignal.
const SignalJobState = "job-state"

// JobStateSignal reports one job's new state.
type JobStateSignal struct {
	JobID   string
	State   ferry.JobState
	Message string
}

// QueryWave is the name of the wave workflow's query; it answers a
// WaveStatus.
const QueryWave = "wave"

// WaveInput is a wave: jobs that migrate together.
type WaveInput struct {
	WaveID string
	Jobs   []JobSpec
	// Concurrency bounds how many jobs precheck and mirror at once; a job
	// stops counting once it is ready for cutover (0: no bound).
	Concurrency int
	Actor       string
}

// WaveJob is one job of a wave and its last reported state.
type WaveJob struct {
	JobID   string         `json:"jobId"`
	State   ferry.JobState `json:"state"`
	Message string         `json:"message,omitempty"`
}

// WaveStatus is the wave's progress.
type WaveStatus struct {
	Phase string    `json:"phase"` // starting, cutting_over, done
	Jobs  []WaveJob `json:"jobs"`
}

// WaveWorkflow runs a wave's jobs as child job workflows (IDs = job IDs,
// started with AutoStart), at most Concurrency of them in prechecks and
// mirror at a time. Once every job is ready_for_cutover it sends each the
// cutover action, and it completes when every job has ended its cutover.
// A job that fails or is cancelled before the wave cuts over fails the wave
// (the other jobs keep syncing and can be cut over one by one).
func WaveWorkflow(ctx workflow.Context, in WaveInput) (WaveStatus, error) {
	st := WaveStatus{Phase: "starting"}
	for _, j := range in.Jobs {
		st.Jobs = append(st.Jobs, WaveJob{JobID: j.JobID, State: ferry.JobPending})
	}
	if err := workflow.SetQueryHandler(ctx, QueryWave, func() (WaveStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	job := func(id string) *WaveJob {
		i := slices.IndexFunc(st.Jobs, func(j WaveJob) bool { return j.JobID == id })
		if i < 0 {
			return nil
		}
		return &st.Jobs[i]
	}
	cutStarted := map[string]bool{}
	signals := workflow.GetSignalChannel(ctx, SignalJobState)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var s JobStateSignal
			if !signals.Receive(ctx, &s) {
				return
			}
			if j := job(s.JobID); j != nil {
				j.State, j.Message = s.State, s.Message
				if s.State == ferry.JobCuttingOver {
					cutStarted[s.JobID] = true
				}
			}
		}
	})

	me := workflow.GetInfo(ctx).WorkflowExecution.ID
	started := map[string]bool{}
	active := func() int {
		n := 0
		for _, j := range st.Jobs {
			switch j.State {
			case ferry.JobReadyForCutover, ferry.JobTestCutover, ferry.JobCuttingOver, ferry.JobCutoverComplete,
				ferry.JobFailed, ferry.JobCancelled, ferry.JobRolledBack:
			default:
				if started[j.JobID] {
					n++
				}
			}
		}
		return n
	}
	for _, spec := range in.Jobs {
		if in.Concurrency > 0 {
			if err := workflow.Await(ctx, func() bool { return active() < in.Concurrency }); err != nil {
				return st, err
			}
		}
		spec.AutoStart, spec.NotifyWorkflowID = true, me
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:        spec.JobID,
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		})
		child := workflow.ExecuteChildWorkflow(cctx, MigrationWorkflow, MigrationInput{Spec: spec})
		if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
			return st, fmt.Errorf("wave %s: start job %s: %w", in.WaveID, spec.JobID, err)
		}
		started[spec.JobID] = true
	}

	ended := func(j WaveJob) bool {
		switch j.State {
		case ferry.JobFailed, ferry.JobCancelled:
			return true
		}
		return false
	}
	if err := workflow.Await(ctx, func() bool {
		return !slices.ContainsFunc(st.Jobs, func(j WaveJob) bool { return j.State != ferry.JobReadyForCutover && !ended(j) }) ||
			slices.ContainsFunc(st.Jobs, ended)
	}); err != nil {
		return st, err
	}
	if slices.ContainsFunc(st.Jobs, ended) {
		var bad []string
		for _, j := range st.Jobs {
			if ended(j) {
				bad = append(bad, fmt.Sprintf("%s is %s (%s)", j.JobID, j.State, j.Message))
			}
		}
		return st, temporal.NewNonRetryableApplicationError("wave "+in.WaveID+" cannot cut over: "+strings.Join(bad, "; "), "WaveFailed", nil, st)
	}

	st.Phase = "cutting_over"
	actor := in.Actor
	if actor == "" {
		actor = "wave " + in.WaveID
	}
	// Ask every ready job that has not started its cutover, again after each
	// state change: a job whose lag rose rejects the action until it is
	// ready again.
	finished := func(j WaveJob) bool {
		switch j.State {
		case ferry.JobCutoverComplete, ferry.JobFailed, ferry.JobCancelled, ferry.JobRolledBack:
			return true
		case ferry.JobSyncing:
			return cutStarted[j.JobID] // the cutover was aborted
		}
		return false
	}
	asked := map[string]ferry.JobState{}
	for {
		for _, j := range st.Jobs {
			if j.State == ferry.JobReadyForCutover && !cutStarted[j.JobID] && asked[j.JobID] != j.State {
				asked[j.JobID] = j.State
				sig := ActionSignal{Action: UpdateCutover, Input: ActionInput{Actor: actor, Reason: "wave " + in.WaveID}}
				if err := workflow.SignalExternalWorkflow(ctx, j.JobID, "", SignalAction, sig).Get(ctx, nil); err != nil {
					return st, fmt.Errorf("wave %s: cutover %s: %w", in.WaveID, j.JobID, err)
				}
			} else if j.State != ferry.JobReadyForCutover {
				delete(asked, j.JobID)
			}
		}
		if !slices.ContainsFunc(st.Jobs, func(j WaveJob) bool { return !finished(j) }) {
			break
		}
		snapshot := slices.Clone(st.Jobs)
		if err := workflow.Await(ctx, func() bool { return !slices.Equal(snapshot, st.Jobs) }); err != nil {
			return st, err
		}
	}
	st.Phase = "done"
	return st, nil
}
