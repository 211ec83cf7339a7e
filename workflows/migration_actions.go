package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// The job workflow's Updates (user actions). Each takes an ActionInput and
// answers an ActionResult; an action illegal in the current state is
// rejected by its validator with "cannot <action>: job is <state>".
const (
	UpdateStart       = "start"
	UpdatePause       = "pause"
	UpdateResume      = "resume"
	UpdateRemirror    = "remirror"
	UpdateTestCutover = "test-cutover"
	UpdateEndTest     = "end-test"
	UpdateCutover     = "cutover"
	UpdateRollback    = "rollback"
	UpdateCancel      = "cancel"
)

// SignalAction delivers an action without waiting for its result (waves use
// it: workflows cannot send Updates). Its payload is an ActionSignal; an
// illegal action is recorded as a rejected action event.
const SignalAction = "action"

// ActionInput says who asks for an action and why.
type ActionInput struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
}

// ActionResult is the job's state once the action took effect (for cutover:
// once cutting over began).
type ActionResult struct {
	State ferry.JobState `json:"state"`
}

// ActionSignal is the payload of SignalAction.
type ActionSignal struct {
	Action string
	Input  ActionInput
}

// Actions returns every action name.
func Actions() []string {
	return []string{UpdateStart, UpdatePause, UpdateResume, UpdateRemirror, UpdateTestCutover,
		UpdateEndTest, UpdateCutover, UpdateRollback, UpdateCancel}
}

// legalIn lists the states in which each action is accepted.
var legalIn = map[string][]ferry.JobState{
	UpdateStart:       {ferry.JobPending},
	UpdatePause:       {ferry.JobMirroring, ferry.JobSyncing, ferry.JobReadyForCutover},
	UpdateResume:      {ferry.JobPaused},
	UpdateRemirror:    {ferry.JobSyncing, ferry.JobReadyForCutover, ferry.JobPaused},
	UpdateTestCutover: {ferry.JobReadyForCutover},
	UpdateEndTest:     {ferry.JobTestCutover},
	UpdateCutover:     {ferry.JobReadyForCutover},
	UpdateRollback:    {ferry.JobCutoverComplete},
	UpdateCancel: {ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing,
		ferry.JobPaused, ferry.JobReadyForCutover, ferry.JobTestCutover},
}

// Legal reports why action is illegal in state, or nil when it is legal.
func Legal(action string, state ferry.JobState) error {
	states, ok := legalIn[action]
	if !ok {
		return fmt.Errorf("unknown action %q", action)
	}
	if !slices.Contains(states, state) {
		msg := fmt.Sprintf("cannot %s: job is %s", action, state)
		if action == UpdateCutover && state == ferry.JobTestCutover {
			msg += " (end the test first)"
		}
		return ferry.Errorf(ferry.ECONFLICT, "%s", msg)
	}
	return nil
}

// validate is every Update's validator.
func (m *migration) validate(action string) error {
	if m.closed {
		return ferry.Errorf(ferry.ECONFLICT, "cannot %s: job is %s (finished)", action, m.st.State)
	}
	if m.st.PendingAction != "" {
		return ferry.Errorf(ferry.ECONFLICT, "cannot %s: job is %s and action %s is in progress", action, m.st.State, m.st.PendingAction)
	}
	return Legal(action, m.st.State)
}

// updateHandler hands the accepted action to the main loop and answers once
// it took effect.
func (m *migration) updateHandler(name string) func(workflow.Context, ActionInput) (ActionResult, error) {
	return func(ctx workflow.Context, in ActionInput) (ActionResult, error) {
		seq := m.enqueue(ctx, name, in, false)
		if err := workflow.Await(ctx, func() bool { _, ok := m.replies[seq]; return ok }); err != nil {
			return ActionResult{}, err
		}
		r := m.replies[seq]
		delete(m.replies, seq)
		return ActionResult{State: r.state}, r.err
	}
}

func (m *migration) enqueue(ctx workflow.Context, name string, in ActionInput, signalled bool) int {
	m.seq++
	m.st.PendingAction = name
	m.actions.Send(ctx, action{Seq: m.seq, Name: name, Input: in, Signalled: signalled})
	return m.seq
}

// receiveSignals turns SignalAction into actions, recording rejected ones.
func (m *migration) receiveSignals(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalAction)
	for {
		var s ActionSignal
		if !ch.Receive(ctx, &s) {
			return
		}
		if err := m.validate(s.Action); err != nil {
			// Wait out an action in progress rather than drop a wave's cutover.
			if m.st.PendingAction != "" && !m.closed {
				if workflow.Await(ctx, func() bool { return m.st.PendingAction == "" || m.closed }) != nil {
					return
				}
				err = m.validate(s.Action)
			}
			if err != nil {
				m.event(ctx, ferry.JobEvent{Type: ferry.JobEventAction, Actor: s.Input.Actor, Message: "rejected: " + ferry.ErrorMessage(err)})
				continue
			}
		}
		m.enqueue(ctx, s.Action, s.Input, true)
	}
}

// answer completes an action.
func (m *migration) answer(a action, err error) {
	m.st.PendingAction = ""
	if !a.Signalled {
		m.replies[a.Seq] = actionReply{state: m.st.State, err: err}
	}
}

// waitAction blocks until an action arrives. ok is false when the workflow
// was cancelled.
func (m *migration) waitAction(ctx workflow.Context) (a action, ok bool) {
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(m.actions, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &a); ok = true })
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
	return a, ok
}

// race runs fn until it returns or an action arrives; an action cancels fn
// (and waits for its activities to stop) and is returned.
func (m *migration) race(ctx workflow.Context, fn func(workflow.Context) error) (*action, error) {
	cctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	fut, set := workflow.NewFuture(ctx)
	workflow.Go(cctx, func(c workflow.Context) { set.Set(nil, fn(c)) })
	var (
		got *action
		err error
	)
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(fut, func(f workflow.Future) { err = f.Get(ctx, nil) })
	sel.AddReceive(m.actions, func(c workflow.ReceiveChannel, _ bool) {
		var a action
		c.Receive(ctx, &a)
		got = &a
	})
	sel.Select(ctx)
	if got != nil {
		cancel()
		_ = fut.Get(ctx, nil)
		return got, nil
	}
	return nil, err
}

// take carries out an action in the current state and answers it.
func (m *migration) take(ctx workflow.Context, a action) error {
	if err := Legal(a.Name, m.st.State); err != nil {
		m.answer(a, err)
		return nil
	}
	actor := a.Input.Actor
	if actor == "" {
		actor = "system"
	}
	msg := a.Name
	if a.Input.Reason != "" {
		msg += ": " + a.Input.Reason
	}
	m.event(ctx, ferry.JobEvent{Type: ferry.JobEventAction, Actor: actor, Message: msg})
	var err error
	switch a.Name {
	case UpdateStart:
		err = m.setState(ctx, ferry.JobPrechecking, actor, msg)
	case UpdateCancel:
		if m.st.State == ferry.JobTestCutover {
			if derr := m.discardTest(ctx); derr != nil {
				m.event(ctx, ferry.JobEvent{Type: ferry.JobEventError, Message: derr.Error()})
			}
		}
		err = m.setState(ctx, ferry.JobCancelled, actor, msg)
	case UpdatePause:
		m.st.PausedFrom = m.st.State
		if m.st.PausedFrom == ferry.JobReadyForCutover {
			m.st.PausedFrom = ferry.JobSyncing
		}
		err = m.setState(ctx, ferry.JobPaused, actor, msg)
	case UpdateResume:
		to := m.st.PausedFrom
		if to == "" {
			to = ferry.JobSyncing
		}
		m.st.PausedFrom = ""
		err = m.setState(ctx, to, actor, msg)
	case UpdateRemirror:
		m.st.PausedFrom = ""
		err = m.setState(ctx, ferry.JobMirroring, actor, msg)
	case UpdateCutover:
		err = m.setState(ctx, ferry.JobCuttingOver, actor, msg)
	case UpdateTestCutover:
		err = m.startTest(ctx, actor, msg)
	case UpdateEndTest:
		err = m.endTest(ctx, actor, msg)
	case UpdateRollback:
		err = m.rollback(ctx, actor, msg)
	}
	m.answer(a, err)
	// A failed action leaves the job where it was; only the reply fails.
	if err != nil {
		m.st.LastError = err.Error()
	}
	return nil
}

// startTest makes the test copy on the target and runs the test hooks.
func (m *migration) startTest(ctx workflow.Context, actor, msg string) error {
	var h *activities.Host
	var res activities.TestCutoverResult
	in := activities.TestCutoverInput{JobID: m.spec.JobID, TargetPath: m.spec.TargetPath}
	if err := m.onHost(ctx, m.longCall(m.spec.TargetHost, 24*time.Hour), h.TestCutover, in, &res); err != nil {
		return fmt.Errorf("test cutover: %w", err)
	}
	m.st.TestPath = res.Path
	for _, hook := range m.spec.TestHooks {
		r := m.runHook(ctx, m.spec.TargetHost, activities.HookTest, hook)
		if !r.OK && hook.MustSucceed {
			m.discardTest(ctx)
			return fmt.Errorf("test cutover: hook %s failed: %s", hook.Name, r.Error)
		}
	}
	return m.setState(ctx, ferry.JobTestCutover, actor, msg+" (copy at "+res.Path+")")
}

func (m *migration) endTest(ctx workflow.Context, actor, msg string) error {
	if err := m.discardTest(ctx); err != nil {
		return err
	}
	return m.setState(ctx, ferry.JobReadyForCutover, actor, msg)
}

func (m *migration) discardTest(ctx workflow.Context) error {
	var h *activities.Host
	in := activities.EndTestInput{JobID: m.spec.JobID, TargetPath: m.spec.TargetPath}
	if err := m.onHost(ctx, m.shortCall(m.spec.TargetHost), h.EndTest, in, nil); err != nil {
		return fmt.Errorf("end test: %w", err)
	}
	m.st.TestPath = ""
	return nil
}

// rollback restores the target's former contents; the main loop then
// returns the job to syncing.
func (m *migration) rollback(ctx workflow.Context, actor, msg string) error {
	var h *activities.Host
	in := activities.RollbackInput{JobID: m.spec.JobID, TargetPath: m.spec.TargetPath}
	if err := m.onHost(ctx, m.shortCall(m.spec.TargetHost), h.Rollback, in, nil); err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	m.st.PreviousPath = ""
	return m.setState(ctx, ferry.JobRolledBack, actor, msg)
}
