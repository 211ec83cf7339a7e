package workflows

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// harness runs MigrationWorkflow in the test environment with every activity
// stubbed. Tests change the stub functions before ExecuteWorkflow.
type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	// Stubs; the mocks call them, so a test can swap them.
	precheck      func(activities.PrecheckInput) (activities.PrecheckResult, error)
	precheckAfter time.Duration
	testAfter     time.Duration
	mirror        func(activities.MirrorInput) (activities.MirrorResult, error)
	mirrorAfter   time.Duration
	syncReady     func(activities.SyncInput) (activities.SyncResult, error)
	readyAfter    time.Duration
	syncWindow    func(activities.SyncInput) (activities.SyncResult, error)
	windowAfter   time.Duration
	finalAfter    time.Duration
	verify        func(activities.VerifyInput) (activities.VerifyResult, error)
	cutover       func(activities.CutoverInput) (activities.CutoverResult, error)
	hook          func(activities.RunHookInput) (activities.RunHookResult, error)

	mu       sync.Mutex // guards the records below (mocks run on other goroutines)
	events   []ferry.JobEvent
	saStates []string
	calls    []string // host activity names in call order
	replies  []reply
}

type reply struct {
	action   string
	at       time.Duration
	rejected error
	state    ferry.JobState
	err      error
}

func testSpec() JobSpec {
	return JobSpec{
		JobID: "job1", SourceHost: "src", TargetHost: "dst",
		SourcePath: "/srv/data", TargetPath: "/srv/data", TargetAddr: "dst:7400",
		LagThreshold: time.Second, ReadyStableFor: 10 * time.Second,
		HostProbe: 30 * time.Second, HostGracePeriod: 10 * time.Minute,
		SyncWindow: time.Minute, RollbackWindow: time.Hour,
	}
}

func newHarness(t *testing.T) *harness {
	var suite testsuite.WorkflowTestSuite
	h := &harness{t: t, env: suite.NewTestWorkflowEnvironment()}
	h.env.SetTestTimeout(30 * time.Second)
	h.mirrorAfter, h.readyAfter, h.windowAfter, h.finalAfter = time.Minute, 15*time.Second, time.Minute, time.Second
	h.precheck = func(in activities.PrecheckInput) (activities.PrecheckResult, error) {
		r := activities.PrecheckResult{HostID: "h-" + in.Role, AgentVersion: "v1.2.0", OS: "linux", ClockSkew: 40 * time.Millisecond}
		if in.Role == activities.RoleSource {
			r.UsedBytes = 1000
			r.Checks = []activities.Check{{Name: activities.CheckSourcePath, OK: true}}
		} else {
			r.FreeBytes = 5000
			r.Checks = []activities.Check{{Name: activities.CheckTargetPath, OK: true}}
		}
		return r, nil
	}
	h.mirror = func(activities.MirrorInput) (activities.MirrorResult, error) {
		return activities.MirrorResult{Summary: activities.MirrorSummary{Files: 3, Bytes: 300, BytesSent: 300}}, nil
	}
	h.syncReady = func(activities.SyncInput) (activities.SyncResult, error) {
		return activities.SyncResult{Ready: true, Stats: activities.SyncStats{LagMillis: 20}}, nil
	}
	h.syncWindow = func(activities.SyncInput) (activities.SyncResult, error) {
		return activities.SyncResult{Stats: activities.SyncStats{LagMillis: 30}}, nil
	}
	h.verify = func(activities.VerifyInput) (activities.VerifyResult, error) {
		return activities.VerifyResult{Report: activities.VerifyReport{Identical: true, Files: 3}}, nil
	}
	h.cutover = func(activities.CutoverInput) (activities.CutoverResult, error) {
		return activities.CutoverResult{Exchanged: true, Previous: "/srv/.ferry-job1/previous"}, nil
	}
	h.hook = func(activities.RunHookInput) (activities.RunHookResult, error) {
		return activities.RunHookResult{OK: true}, nil
	}

	var host *activities.Host
	var ctl *activities.Controller
	h.env.RegisterActivity(host)
	h.env.RegisterActivity(ctl)
	h.env.RegisterWorkflow(MigrationWorkflow)
	h.env.OnActivity(ctl.RecordJobEvent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordJobEventInput) (activities.RecordJobEventResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, in.Event)
			return activities.RecordJobEventResult{ID: int64(len(h.events))}, nil
		})
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		state, _ := sa.GetKeyword(saJobState)
		src, _ := sa.GetKeyword(saSourceHost)
		dst, _ := sa.GetKeyword(saTargetHost)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.saStates = append(h.saStates, state+"@"+src+">"+dst)
	}).Return()

	called := func(name string) {
		h.mu.Lock()
		h.calls = append(h.calls, name)
		h.mu.Unlock()
	}
	h.env.OnActivity(host.Precheck, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return h.precheckAfter }).Return(
		func(_ context.Context, in activities.PrecheckInput) (activities.PrecheckResult, error) {
			called("Precheck:" + in.Role)
			return h.precheck(in)
		})
	h.env.OnActivity(host.Stage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StageInput) (activities.StageResult, error) {
			called("Stage")
			return activities.StageResult{Replica: "/srv/.ferry-job1/replica", Checks: []activities.Check{{Name: activities.CheckSameFS, OK: true}}}, nil
		})
	h.env.OnActivity(host.Mirror, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return h.mirrorAfter }).Return(
		func(_ context.Context, in activities.MirrorInput) (activities.MirrorResult, error) {
			called("Mirror")
			return h.mirror(in)
		})
	h.env.OnActivity(host.Sync, mock.Anything, mock.MatchedBy(func(in activities.SyncInput) bool { return in.ReturnWhenReady })).
		AfterFn(func() time.Duration { return h.readyAfter }).Return(
		func(_ context.Context, in activities.SyncInput) (activities.SyncResult, error) {
			called("Sync:ready")
			return h.syncReady(in)
		})
	h.env.OnActivity(host.Sync, mock.Anything, mock.MatchedBy(func(in activities.SyncInput) bool { return !in.ReturnWhenReady })).
		AfterFn(func() time.Duration { return h.windowAfter }).Return(
		func(_ context.Context, in activities.SyncInput) (activities.SyncResult, error) {
			called("Sync:window")
			return h.syncWindow(in)
		})
	h.env.OnActivity(host.FinalSync, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return h.finalAfter }).Return(
		func(_ context.Context, in activities.FinalSyncInput) (activities.FinalSyncResult, error) {
			called("FinalSync")
			return activities.FinalSyncResult{}, nil
		})
	h.env.OnActivity(host.Verify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.VerifyInput) (activities.VerifyResult, error) {
			called("Verify")
			return h.verify(in)
		})
	h.env.OnActivity(host.Cutover, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CutoverInput) (activities.CutoverResult, error) {
			called("Cutover")
			return h.cutover(in)
		})
	h.env.OnActivity(host.Rollback, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RollbackInput) (activities.RollbackResult, error) {
			called("Rollback")
			return activities.RollbackResult{Restored: true}, nil
		})
	h.env.OnActivity(host.TestCutover, mock.Anything, mock.Anything).AfterFn(func() time.Duration { return h.testAfter }).Return(
		func(_ context.Context, in activities.TestCutoverInput) (activities.TestCutoverResult, error) {
			called("TestCutover")
			return activities.TestCutoverResult{Path: "/srv/.ferry-job1/test"}, nil
		})
	h.env.OnActivity(host.EndTest, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EndTestInput) (activities.EndTestResult, error) {
			called("EndTest")
			return activities.EndTestResult{}, nil
		})
	h.env.OnActivity(host.RunHook, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RunHookInput) (activities.RunHookResult, error) {
			called("RunHook:" + in.Phase + ":" + in.Hook.Name)
			return h.hook(in)
		})
	return h
}

// at sends the action as an Update at workflow time d and records the
// outcome.
func (h *harness) at(d time.Duration, action string) {
	h.env.RegisterDelayedCallback(func() {
		i := h.addReply(reply{action: action, at: d})
		h.env.UpdateWorkflow(action, fmt.Sprintf("%s-%d", action, i), &testsuite.TestUpdateCallback{
			OnReject: func(err error) { h.setReply(i, func(r *reply) { r.rejected = err }) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				h.setReply(i, func(r *reply) {
					r.err = err
					if res, ok := v.(ActionResult); ok {
						r.state = res.State
					}
				})
			},
		}, ActionInput{Actor: "alice"})
	}, d)
}

func (h *harness) addReply(r reply) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.replies = append(h.replies, r)
	return len(h.replies) - 1
}

func (h *harness) setReply(i int, f func(*reply)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(&h.replies[i])
}

// queryAt records the status at workflow time d into *out.
func (h *harness) queryAt(d time.Duration, out *Status) {
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryStatus)
		if err != nil {
			h.t.Errorf("query at %s: %v", d, err)
			return
		}
		if err := v.Get(out); err != nil {
			h.t.Errorf("query at %s: %v", d, err)
		}
	}, d)
}

func (h *harness) run(spec JobSpec) (MigrationResult, error) {
	h.env.ExecuteWorkflow(MigrationWorkflow, MigrationInput{Spec: spec})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	var res MigrationResult
	err := h.env.GetWorkflowError()
	if err == nil {
		if gerr := h.env.GetWorkflowResult(&res); gerr != nil {
			h.t.Fatal(gerr)
		}
	}
	return res, err
}

// states returns the ToState of every state event, in order.
func (h *harness) states() []ferry.JobState {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ferry.JobState
	for _, e := range h.events {
		if e.Type == ferry.JobEventState {
			out = append(out, e.ToState)
		}
	}
	return out
}

func (h *harness) eventsOf(typ string) []ferry.JobEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ferry.JobEvent
	for _, e := range h.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) reply(action string, n int) reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.replies {
		if r.action == action {
			if n == 0 {
				return r
			}
			n--
		}
	}
	h.t.Fatalf("no reply #%d for %s", n, action)
	return reply{}
}

const enumsScheduleToStart = enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START

type workflowContinueAsNew = workflow.ContinueAsNewError

func decodeContinueAsNew(can *workflow.ContinueAsNewError, out any) error {
	return converter.GetDefaultDataConverter().FromPayloads(can.Input, out)
}
