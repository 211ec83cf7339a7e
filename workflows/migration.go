package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// JobSpec is a migration job as its workflow sees it. The control plane
// builds it from the stored job; zero durations take the defaults below.
type JobSpec struct {
	JobID      string
	SourceHost string // host IDs: their agents poll HostTaskQueue(id)
	TargetHost string
	SourcePath string
	TargetPath string // the live path; the replica is staged beside it
	TargetAddr string // the target agent's data-channel address
	Options    activities.MirrorOptions

	// AutoStart starts prechecks at once instead of waiting for "start".
	AutoStart bool
	// LagThreshold: the job is ready for cutover once the lag stayed at most
	// this for ReadyStableFor (defaults 2 s and 10 s).
	LagThreshold   time.Duration
	ReadyStableFor time.Duration
	// MaxClockSkew bounds the hosts' clock difference to the server (5 s).
	MaxClockSkew time.Duration

	// HostGracePeriod is how long the job waits for an offline agent before
	// it fails (30 min). HostProbe is how long one host activity waits in its
	// queue before the job reports that it waits for the host (30 s).
	HostGracePeriod time.Duration
	HostProbe       time.Duration
	// HeartbeatTimeout of the long host activities (10 s). It bounds how
	// fast a dead agent is noticed and, since the SDK throttles heartbeats
	// to 80 % of it, how fast pause and cutover stop a running activity.
	HeartbeatTimeout time.Duration

	PreCutover     []activities.Hook // on the source, in order; failure aborts the cutover
	PostCutover    []activities.Hook // on the target, in order
	ShutdownSource *activities.Hook  // on the source, last
	TestHooks      []activities.Hook // on the target after the test copy exists

	// RollbackWindow is how long the workflow stays in cutover_complete,
	// accepting rollback, before it completes (24 h).
	RollbackWindow time.Duration
	// SyncWindow bounds one sync activity; the workflow refreshes the status
	// and may continue as new between windows (30 min). Each window starts a
	// new sync session, which resyncs with a mirror first.
	SyncWindow time.Duration
	// MaxHistoryEvents: the sync phase continues as new beyond this many
	// history events (5,000) or when the server suggests it.
	MaxHistoryEvents int
	// CompareEvery schedules a compare during sync (0: none).
	CompareEvery time.Duration
	// NotifyWorkflowID receives a SignalJobState on every state change (a
	// wave workflow); "" for none.
	NotifyWorkflowID string
}

func (s JobSpec) withDefaults() JobSpec {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.LagThreshold, 2*time.Second)
	def(&s.ReadyStableFor, 10*time.Second)
	def(&s.MaxClockSkew, 5*time.Second)
	def(&s.HostGracePeriod, 30*time.Minute)
	def(&s.HostProbe, 30*time.Second)
	def(&s.HeartbeatTimeout, 10*time.Second)
	def(&s.RollbackWindow, 24*time.Hour)
	def(&s.SyncWindow, 30*time.Minute)
	if s.MaxHistoryEvents <= 0 {
		s.MaxHistoryEvents = 5000
	}
	return s
}

// Validate returns EINVALID naming the first missing field.
func (s JobSpec) Validate() error {
	switch {
	case s.JobID == "":
		return ferry.Errorf(ferry.EINVALID, "job spec: job ID is required")
	case s.SourceHost == "" || s.TargetHost == "":
		return ferry.Errorf(ferry.EINVALID, "job spec: source and target hosts are required")
	case s.SourcePath == "" || s.TargetPath == "":
		return ferry.Errorf(ferry.EINVALID, "job spec: source and target paths are required")
	}
	return nil
}

// MigrationInput starts, or continues as new, a job's workflow.
type MigrationInput struct {
	Spec JobSpec
	// Carry is the state a continued-as-new run resumes from; nil at first.
	Carry *Status
}

// MigrationResult is the job's end.
type MigrationResult struct {
	State  ferry.JobState
	Status Status
}

// errContinueAsNew asks the main loop to continue as new.
var errContinueAsNew = errors.New("continue as new")

// MigrationWorkflow runs one migration job; its workflow ID is the job ID.
// It moves through pending → prechecking → mirroring → syncing ⇄ paused →
// ready_for_cutover → test_cutover → cutting_over → cutover_complete, driven
// by Updates (see the Update* names) and answering QueryStatus. It fails
// with a non-retryable application error of type "JobFailed" whose message
// is the reason.
func MigrationWorkflow(ctx workflow.Context, in MigrationInput) (MigrationResult, error) {
	if err := in.Spec.Validate(); err != nil {
		return MigrationResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidSpec", nil)
	}
	m, err := newMigration(ctx, in)
	if err != nil {
		return MigrationResult{}, err
	}
	for {
		var err error
		switch m.st.State {
		case ferry.JobPending:
			err = m.pending(ctx)
		case ferry.JobPrechecking:
			err = m.precheck(ctx)
		case ferry.JobMirroring:
			err = m.mirror(ctx)
		case ferry.JobSyncing, ferry.JobReadyForCutover, ferry.JobTestCutover:
			err = m.replicate(ctx)
		case ferry.JobPaused:
			err = m.paused(ctx)
		case ferry.JobCuttingOver:
			err = m.cutover(ctx)
		case ferry.JobCutoverComplete:
			var done bool
			if done, err = m.complete(ctx); done {
				return m.finish(ctx)
			}
		case ferry.JobRolledBack:
			err = m.setState(ctx, ferry.JobSyncing, "system", "replication resumes after rollback")
		case ferry.JobCancelled, ferry.JobFailed:
			return m.finish(ctx)
		default:
			err = fmt.Errorf("unknown state %q", m.st.State)
		}
		switch {
		case errors.Is(err, errContinueAsNew):
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return MigrationResult{}, err
			}
			carry := m.st
			carry.Run++
			return MigrationResult{}, workflow.NewContinueAsNewError(ctx, MigrationWorkflow, MigrationInput{Spec: m.spec, Carry: &carry})
		case err != nil && ctx.Err() != nil:
			// The workflow itself was cancelled through Temporal.
			dctx, cancel := workflow.NewDisconnectedContext(ctx)
			defer cancel()
			m.st.LastError = "workflow cancelled"
			_ = m.setState(dctx, ferry.JobCancelled, "system", "workflow cancelled")
			return m.finish(dctx)
		case err != nil:
			m.st.LastError = err.Error()
			if serr := m.setState(ctx, ferry.JobFailed, "system", err.Error()); serr != nil {
				return MigrationResult{}, serr
			}
		}
	}
}

// finish completes the workflow in a terminal state once every update
// handler has answered.
func (m *migration) finish(ctx workflow.Context) (MigrationResult, error) {
	m.closed = true
	// An action accepted just before the job ended is answered with the
	// reason it can no longer be carried out.
	for {
		var a action
		if !m.actions.ReceiveAsync(&a) {
			break
		}
		m.answer(a, ferry.Errorf(ferry.ECONFLICT, "cannot %s: job is %s", a.Name, m.st.State))
	}
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	if m.spec.CompareEvery > 0 {
		m.deleteCompare(ctx)
	}
	res := MigrationResult{State: m.st.State, Status: m.st}
	if m.st.State == ferry.JobFailed {
		return res, temporal.NewNonRetryableApplicationError("job failed: "+m.st.LastError, "JobFailed", nil, res)
	}
	return res, nil
}
