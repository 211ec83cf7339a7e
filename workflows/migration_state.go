package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// migration is one job workflow's state. Everything here runs on the
// workflow's single logical thread; update handlers and the main loop share
// it without locks.
type migration struct {
	spec JobSpec
	st   Status

	// actions carries accepted actions from update handlers and signals to
	// the main loop, one at a time (st.PendingAction guards it).
	actions workflow.Channel
	seq     int
	replies map[int]actionReply
	closed  bool // the workflow is finishing: every action is refused
}

type action struct {
	Seq   int
	Name  string
	Input ActionInput
	// Signalled actions get no reply.
	Signalled bool
}

type actionReply struct {
	state ferry.JobState
	err   error
}

var (
	saJobState   = temporal.NewSearchAttributeKeyKeyword(SearchAttrJobState)
	saSourceHost = temporal.NewSearchAttributeKeyKeyword(SearchAttrSourceHost)
	saTargetHost = temporal.NewSearchAttributeKeyKeyword(SearchAttrTargetHost)
)

func newMigration(ctx workflow.Context, in MigrationInput) (*migration, error) {
	m := &migration{
		spec:    in.Spec.withDefaults(),
		actions: workflow.NewBufferedChannel(ctx, 1),
		replies: map[int]actionReply{},
	}
	if in.Carry != nil {
		m.st = *in.Carry
		m.st.PendingAction = ""
	} else {
		m.st = Status{JobID: in.Spec.JobID, State: ferry.JobPending, StateSince: workflow.Now(ctx)}
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return m.st, nil }); err != nil {
		return nil, err
	}
	for _, name := range Actions() {
		err := workflow.SetUpdateHandlerWithOptions(ctx, name, m.updateHandler(name), workflow.UpdateHandlerOptions{
			Validator: func(ctx workflow.Context, in ActionInput) error { return m.validate(name) },
		})
		if err != nil {
			return nil, err
		}
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateOptions, m.updateOptions, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, in OptionsInput) error { return m.validateOptions(in) },
	})
	if err != nil {
		return nil, err
	}
	workflow.Go(ctx, m.receiveSignals)
	if err := m.upsertSearchAttributes(ctx); err != nil {
		return nil, err
	}
	if in.Carry == nil {
		m.event(ctx, ferry.JobEvent{Type: ferry.JobEventState, ToState: ferry.JobPending, Actor: "system", Message: "job created"})
	}
	return m, nil
}

func (m *migration) upsertSearchAttributes(ctx workflow.Context) error {
	return workflow.UpsertTypedSearchAttributes(ctx,
		saJobState.ValueSet(string(m.st.State)),
		saSourceHost.ValueSet(m.spec.SourceHost),
		saTargetHost.ValueSet(m.spec.TargetHost),
	)
}

// setState moves the job to state to: search attributes, a job event, and a
// signal to the wave that runs the job, if any.
func (m *migration) setState(ctx workflow.Context, to ferry.JobState, actor, msg string) error {
	from := m.st.State
	m.st.State, m.st.StateSince = to, workflow.Now(ctx)
	if err := m.upsertSearchAttributes(ctx); err != nil {
		return fmt.Errorf("upsert search attributes: %w", err)
	}
	workflow.GetLogger(ctx).Info("job state", "job", m.spec.JobID, "from", from, "to", to, "message", msg)
	m.event(ctx, ferry.JobEvent{Type: ferry.JobEventState, FromState: from, ToState: to, Actor: actor, Message: msg})
	if m.spec.NotifyWorkflowID != "" {
		f := workflow.SignalExternalWorkflow(ctx, m.spec.NotifyWorkflowID, "", SignalJobState, JobStateSignal{JobID: m.spec.JobID, State: to, Message: msg})
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("notify wave", "wave", m.spec.NotifyWorkflowID, "error", err)
		}
	}
	return nil
}

// controllerOptions are the options of controller activities: the database
// may be down for a while, the job waits for it.
func controllerOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: activities.NonRetryableErrorTypes(),
		},
	})
}

// event records a job event through the controller. A failure is logged,
// never fails the job: events are history, not control.
func (m *migration) event(ctx workflow.Context, e ferry.JobEvent) {
	m.eventWith(ctx, e, nil)
}

// eventDetails records an event whose Details is v as JSON.
func (m *migration) eventDetails(ctx workflow.Context, typ, msg string, v any) {
	m.eventWith(ctx, ferry.JobEvent{Type: typ, Message: msg}, v)
}

func (m *migration) eventWith(ctx workflow.Context, e ferry.JobEvent, details any) {
	e.JobID, e.Time = m.spec.JobID, workflow.Now(ctx)
	if e.Actor == "" {
		e.Actor = "system"
	}
	var c *activities.Controller
	err := workflow.ExecuteActivity(controllerOptions(ctx), c.RecordJobEvent, activities.RecordJobEventInput{Event: e, Details: details}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("record job event", "job", m.spec.JobID, "type", e.Type, "error", err)
	}
}

// hostAway notes that host's agent did not pick up an activity within the
// probe time. Returns a HostOffline error once the grace period is over.
func (m *migration) hostAway(ctx workflow.Context, host string) error {
	now := workflow.Now(ctx)
	i := slices.IndexFunc(m.st.WaitingForHosts, func(w HostWait) bool { return w.Host == host })
	if i < 0 {
		since := now.Add(-m.spec.HostProbe)
		m.st.WaitingForHosts = append(m.st.WaitingForHosts, HostWait{Host: host, Since: since})
		m.event(ctx, ferry.JobEvent{Type: ferry.JobEventHost, Message: fmt.Sprintf("waiting for host %s: its agent is offline", host)})
		i = len(m.st.WaitingForHosts) - 1
	}
	if away := now.Sub(m.st.WaitingForHosts[i].Since); away >= m.spec.HostGracePeriod {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("host %s has been offline for %s, longer than the job's grace period of %s", host, away.Round(time.Second), m.spec.HostGracePeriod),
			"HostOffline", nil)
	}
	return nil
}

// hostBack notes that host's agent answers again.
func (m *migration) hostBack(ctx workflow.Context, host string) {
	i := slices.IndexFunc(m.st.WaitingForHosts, func(w HostWait) bool { return w.Host == host })
	if i < 0 {
		return
	}
	away := workflow.Now(ctx).Sub(m.st.WaitingForHosts[i].Since)
	m.st.WaitingForHosts = slices.Delete(m.st.WaitingForHosts, i, i+1)
	m.event(ctx, ferry.JobEvent{Type: ferry.JobEventHost, Message: fmt.Sprintf("host %s is back after %s", host, away.Round(time.Second))})
}
