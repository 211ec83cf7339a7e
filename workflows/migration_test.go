package workflows

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"go.temporal.io/sdk/temporal"
)

func wantStates(t *testing.T, h *harness, want ...ferry.JobState) {
	t.Helper()
	if got := h.states(); !slices.Equal(got, want) {
		t.Fatalf("states:\n got %v\nwant %v", got, want)
	}
}

func TestHappyPathToCutoverComplete(t *testing.T) {
	h := newHarness(t)
	spec := testSpec()
	spec.PreCutover = []activities.Hook{{Name: "stop-app", Command: []string{"systemctl", "stop", "app"}, MustSucceed: true}}
	spec.PostCutover = []activities.Hook{{Name: "start-app", Command: []string{"systemctl", "start", "app"}, MustSucceed: true}}
	spec.ShutdownSource = &activities.Hook{Name: "poweroff", Command: []string{"poweroff"}}
	var mirroring, ready, done Status
	h.at(time.Second, UpdateStart)
	h.queryAt(30*time.Second, &mirroring)
	h.queryAt(2*time.Minute, &ready)
	h.at(3*time.Minute, UpdateCutover)
	h.queryAt(10*time.Minute, &done)
	res, err := h.run(spec)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, h, ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing,
		ferry.JobReadyForCutover, ferry.JobCuttingOver, ferry.JobCutoverComplete)
	if res.State != ferry.JobCutoverComplete {
		t.Fatalf("result state %s", res.State)
	}
	if r := h.reply(UpdateStart, 0); r.rejected != nil || r.err != nil || r.state != ferry.JobPrechecking {
		t.Fatalf("start reply %+v", r)
	}
	if r := h.reply(UpdateCutover, 0); r.rejected != nil || r.err != nil || r.state != ferry.JobCuttingOver {
		t.Fatalf("cutover reply %+v", r)
	}
	if mirroring.State != ferry.JobMirroring || ready.State != ferry.JobReadyForCutover || done.State != ferry.JobCutoverComplete {
		t.Fatalf("queried states %s %s %s", mirroring.State, ready.State, done.State)
	}
	if ready.Progress.FilesDone != 3 || ready.Progress.BytesDone != 300 || ready.Progress.LagMillis == 0 {
		t.Fatalf("progress %+v", ready.Progress)
	}
	if done.PreviousPath != "/srv/.ferry-job1/previous" || done.LastVerify == nil || !done.LastVerify.Identical {
		t.Fatalf("cutover status %+v", done)
	}
	// Every named precheck is reported with its result.
	var names []string
	for _, c := range done.Prechecks {
		if !c.OK {
			t.Errorf("precheck %s failed: %s", c.Name, c.Detail)
		}
		names = append(names, c.Name)
	}
	for _, want := range []string{activities.CheckAgentOnline, activities.CheckAgentVersion, activities.CheckSourcePath,
		activities.CheckTargetPath, activities.CheckFreeSpace, activities.CheckClockSkew, activities.CheckOSFamily, activities.CheckSameFS} {
		if !slices.Contains(names, want) {
			t.Errorf("precheck %q missing from %v", want, names)
		}
	}
	if n := len(h.eventsOf(ferry.JobEventPrecheck)); n != len(done.Prechecks) {
		t.Errorf("%d precheck events for %d checks", n, len(done.Prechecks))
	}
	// The cutover steps in order: hooks, final sync, verify, swap, post, shutdown.
	var steps []string
	for _, c := range h.calls {
		switch {
		case strings.HasPrefix(c, "RunHook"), c == "FinalSync", c == "Verify", c == "Cutover":
			steps = append(steps, c)
		}
	}
	want := []string{"RunHook:pre-cutover:stop-app", "FinalSync", "Verify", "Cutover", "RunHook:post-cutover:start-app", "RunHook:shutdown:poweroff"}
	if !slices.Equal(steps, want) {
		t.Fatalf("cutover steps %v, want %v", steps, want)
	}
	// Search attributes follow every state change and name both hosts.
	if len(h.saStates) < 7 || h.saStates[len(h.saStates)-1] != "cutover_complete@src>dst" {
		t.Fatalf("search attributes %v", h.saStates)
	}
}

func TestPrecheckFailureFailsJobNamingTheCheck(t *testing.T) {
	h := newHarness(t)
	base := h.precheck
	h.precheck = func(in activities.PrecheckInput) (activities.PrecheckResult, error) {
		r, err := base(in)
		r.FreeBytes = 10 // less than the source uses
		if in.Role == activities.RoleTarget {
			r.OS = "freebsd"
		}
		return r, err
	}
	spec := testSpec()
	spec.AutoStart = true
	_, err := h.run(spec)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "JobFailed" {
		t.Fatalf("want JobFailed, got %v", err)
	}
	for _, s := range []string{"target free space", "same OS family"} {
		if !strings.Contains(app.Error(), s) {
			t.Errorf("reason %q does not name %q", app.Error(), s)
		}
	}
	wantStates(t, h, ferry.JobPending, ferry.JobPrechecking, ferry.JobFailed)
	if slices.Contains(h.calls, "Mirror") || slices.Contains(h.calls, "Stage") {
		t.Fatalf("copied after a failed precheck: %v", h.calls)
	}
}

func TestPauseResumeDuringSyncAndMirror(t *testing.T) {
	h := newHarness(t)
	h.readyAfter = 10 * time.Minute // stays syncing
	spec := testSpec()
	spec.AutoStart = true
	var paused Status
	h.at(30*time.Second, UpdatePause) // mirroring
	h.queryAt(40*time.Second, &paused)
	h.at(50*time.Second, UpdateResume)  // back to mirroring
	h.at(3*time.Minute, UpdatePause)    // syncing
	h.at(4*time.Minute, UpdateResume)   // back to syncing
	h.at(5*time.Minute, UpdateRemirror) // syncing → mirroring
	h.at(5*time.Minute+10*time.Second, UpdateCancel)
	res, err := h.run(spec)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, h, ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobPaused, ferry.JobMirroring,
		ferry.JobSyncing, ferry.JobPaused, ferry.JobSyncing, ferry.JobMirroring, ferry.JobCancelled)
	if paused.State != ferry.JobPaused || paused.PausedFrom != ferry.JobMirroring {
		t.Fatalf("paused status %+v", paused)
	}
	if res.State != ferry.JobCancelled {
		t.Fatalf("result %s", res.State)
	}
	if r := h.reply(UpdateResume, 0); r.state != ferry.JobMirroring {
		t.Fatalf("resume answered %s", r.state)
	}
	// The interrupted mirror ran again (the engine resumes from its checkpoint).
	n := 0
	for _, c := range h.calls {
		if c == "Mirror" {
			n++
		}
	}
	if n < 1 {
		t.Fatalf("mirror calls %v", h.calls)
	}
}

func TestLagAboveThresholdReturnsToSyncing(t *testing.T) {
	h := newHarness(t)
	h.syncWindow = func(activities.SyncInput) (activities.SyncResult, error) {
		return activities.SyncResult{Lagging: true, Stats: activities.SyncStats{LagMillis: 5000}}, nil
	}
	h.readyAfter = 15 * time.Second
	spec := testSpec()
	spec.AutoStart = true
	h.at(3*time.Minute, UpdateCancel)
	if _, err := h.run(spec); err != nil {
		t.Fatal(err)
	}
	got := h.states()
	want := []ferry.JobState{ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing, ferry.JobReadyForCutover, ferry.JobSyncing, ferry.JobReadyForCutover}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) || got[len(got)-1] != ferry.JobCancelled {
		t.Fatalf("states %v", got)
	}
}

func TestRemirrorRequiredBySync(t *testing.T) {
	h := newHarness(t)
	calls := 0
	h.syncReady = func(activities.SyncInput) (activities.SyncResult, error) {
		calls++
		if calls == 1 {
			return activities.SyncResult{RemirrorRequired: true}, nil
		}
		return activities.SyncResult{Ready: true}, nil
	}
	spec := testSpec()
	spec.AutoStart = true
	h.at(10*time.Minute, UpdateCancel)
	if _, err := h.run(spec); err != nil {
		t.Fatal(err)
	}
	wantStates(t, h, ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing, ferry.JobMirroring,
		ferry.JobSyncing, ferry.JobReadyForCutover, ferry.JobCancelled)
}

func TestTestCutoverEndTestThenCutover(t *testing.T) {
	h := newHarness(t)
	spec := testSpec()
	spec.AutoStart = true
	spec.TestHooks = []activities.Hook{{Name: "smoke", Command: []string{"true"}, MustSucceed: true}}
	var during Status
	h.at(2*time.Minute, UpdateTestCutover)
	h.queryAt(3*time.Minute, &during)
	h.at(4*time.Minute, UpdateCutover) // rejected: the test is running
	h.at(5*time.Minute, UpdateEndTest)
	h.at(6*time.Minute, UpdateCutover)
	if _, err := h.run(spec); err != nil {
		t.Fatal(err)
	}
	wantStates(t, h, ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing, ferry.JobReadyForCutover,
		ferry.JobTestCutover, ferry.JobReadyForCutover, ferry.JobCuttingOver, ferry.JobCutoverComplete)
	if during.TestPath != "/srv/.ferry-job1/test" {
		t.Fatalf("test path %q", during.TestPath)
	}
	r := h.reply(UpdateCutover, 0)
	if r.rejected == nil || !strings.Contains(r.rejected.Error(), "cannot cutover: job is test_cutover") {
		t.Fatalf("cutover during test: %+v", r)
	}
	// Replication continued during the test: sync windows ran between the two.
	i, j := slices.Index(h.calls, "TestCutover"), slices.Index(h.calls, "EndTest")
	if i < 0 || j < i || !slices.Contains(h.calls[i:j], "Sync:window") {
		t.Fatalf("no sync during the test: %v", h.calls)
	}
	if !slices.Contains(h.calls, "RunHook:test-cutover:smoke") {
		t.Fatalf("test hook not run: %v", h.calls)
	}
}

func TestRollbackAfterCutoverReturnsToSyncing(t *testing.T) {
	h := newHarness(t)
	spec := testSpec()
	spec.AutoStart = true
	h.at(2*time.Minute, UpdateCutover)
	h.at(5*time.Minute, UpdateRollback)
	h.at(8*time.Minute, UpdateCutover) // ready again after rollback
	res, err := h.run(spec)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, h, ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing, ferry.JobReadyForCutover,
		ferry.JobCuttingOver, ferry.JobCutoverComplete, ferry.JobRolledBack, ferry.JobSyncing, ferry.JobReadyForCutover,
		ferry.JobCuttingOver, ferry.JobCutoverComplete)
	if r := h.reply(UpdateRollback, 0); r.err != nil || r.state != ferry.JobRolledBack {
		t.Fatalf("rollback reply %+v", r)
	}
	if res.State != ferry.JobCutoverComplete {
		t.Fatal(res.State)
	}
}

func TestCutoverAborts(t *testing.T) {
	cases := []struct {
		name  string
		setup func(h *harness, spec *JobSpec)
		want  []ferry.JobState
		calls []string // must not be called
		msg   string
	}{{
		name: "pre-cutover hook fails",
		setup: func(h *harness, spec *JobSpec) {
			spec.PreCutover = []activities.Hook{{Name: "stop-app", Command: []string{"false"}, MustSucceed: true}}
			h.hook = func(activities.RunHookInput) (activities.RunHookResult, error) {
				return activities.RunHookResult{ExitCode: 1, Error: "exited with status 1"}, nil
			}
		},
		want:  []ferry.JobState{ferry.JobCuttingOver, ferry.JobSyncing},
		calls: []string{"FinalSync", "Cutover"},
		msg:   "pre-cutover hook stop-app failed",
	}, {
		name: "verify finds differences",
		setup: func(h *harness, spec *JobSpec) {
			h.verify = func(activities.VerifyInput) (activities.VerifyResult, error) {
				return activities.VerifyResult{Report: activities.VerifyReport{Count: 2, Differences: []activities.Difference{{Path: "a", Kind: "content"}, {Path: "b", Kind: "missing"}}}}, nil
			}
		},
		want:  []ferry.JobState{ferry.JobCuttingOver, ferry.JobSyncing},
		calls: []string{"Cutover"},
		msg:   "verify found 2 differences",
	}, {
		name: "must-succeed post-cutover action fails",
		setup: func(h *harness, spec *JobSpec) {
			spec.PostCutover = []activities.Hook{{Name: "health", Command: []string{"false"}, MustSucceed: true}}
			h.hook = func(activities.RunHookInput) (activities.RunHookResult, error) {
				return activities.RunHookResult{ExitCode: 1, Error: "exited with status 1"}, nil
			}
		},
		want: []ferry.JobState{ferry.JobCuttingOver, ferry.JobRolledBack, ferry.JobSyncing},
		msg:  "post-cutover action health failed",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			spec := testSpec()
			spec.AutoStart = true
			tc.setup(h, &spec)
			var st Status
			h.at(2*time.Minute, UpdateCutover)
			h.queryAt(2*time.Minute+10*time.Second, &st)
			h.at(2*time.Minute+20*time.Second, UpdateCancel)
			if _, err := h.run(spec); err != nil {
				t.Fatal(err)
			}
			got := h.states()
			i := slices.Index(got, ferry.JobCuttingOver)
			if i < 0 || !slices.Equal(got[i:i+len(tc.want)], tc.want) {
				t.Fatalf("states %v, want …%v", got, tc.want)
			}
			for _, c := range tc.calls {
				if slices.Contains(h.calls, c) {
					t.Errorf("%s ran after the abort: %v", c, h.calls)
				}
			}
			if !strings.Contains(st.LastError, tc.msg) {
				t.Fatalf("last error %q, want %q", st.LastError, tc.msg)
			}
		})
	}
}

func TestWaitsForOfflineHostThenContinues(t *testing.T) {
	h := newHarness(t)
	offline := 3
	base := h.precheck
	h.precheck = func(in activities.PrecheckInput) (activities.PrecheckResult, error) {
		if in.Role == activities.RoleTarget && offline > 0 {
			offline--
			return activities.PrecheckResult{}, temporal.NewTimeoutError(enumsScheduleToStart, nil)
		}
		return base(in)
	}
	h.precheckAfter = 30 * time.Second // each attempt waits out the probe
	spec := testSpec()
	spec.AutoStart = true
	var waiting Status
	h.queryAt(45*time.Second, &waiting)
	h.at(10*time.Minute, UpdateCancel)
	if _, err := h.run(spec); err != nil {
		t.Fatal(err)
	}
	if !waiting.WaitingForHost() || waiting.WaitingForHosts[0].Host != "dst" || waiting.State != ferry.JobPrechecking {
		t.Fatalf("status while the target is offline: %+v", waiting)
	}
	hostEvents := h.eventsOf(ferry.JobEventHost)
	if len(hostEvents) != 2 || !strings.Contains(hostEvents[0].Message, "waiting for host dst") || !strings.Contains(hostEvents[1].Message, "host dst is back") {
		t.Fatalf("host events %+v", hostEvents)
	}
	if !slices.Contains(h.states(), ferry.JobMirroring) {
		t.Fatalf("did not carry on: %v", h.states())
	}
}

func TestFailsAfterHostGracePeriod(t *testing.T) {
	h := newHarness(t)
	h.mirror = func(activities.MirrorInput) (activities.MirrorResult, error) {
		return activities.MirrorResult{}, temporal.NewTimeoutError(enumsScheduleToStart, nil)
	}
	h.mirrorAfter = 30 * time.Second // each attempt waits out the probe
	spec := testSpec()
	spec.AutoStart = true
	_, err := h.run(spec)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "JobFailed" || !strings.Contains(app.Error(), "host src has been offline") ||
		!strings.Contains(app.Error(), "grace period of 10m0s") {
		t.Fatalf("want a clear host-offline failure, got %v", err)
	}
	wantStates(t, h, ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobFailed)
}

func TestContinueAsNewDuringSyncCarriesState(t *testing.T) {
	h := newHarness(t)
	spec := testSpec()
	spec.AutoStart = true
	spec.MaxHistoryEvents = 60
	// The server reports a long history once the job is ready.
	h.env.RegisterDelayedCallback(func() { h.env.SetCurrentHistoryLength(100) }, 3*time.Minute)
	h.env.ExecuteWorkflow(MigrationWorkflow, MigrationInput{Spec: spec})
	err := h.env.GetWorkflowError()
	var can *workflowContinueAsNew
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next MigrationInput
	if err := decodeContinueAsNew(can, &next); err != nil {
		t.Fatal(err)
	}
	if next.Carry == nil || next.Carry.Run != 1 || next.Carry.State != ferry.JobReadyForCutover || next.Carry.Progress.FilesDone != 3 ||
		len(next.Carry.Prechecks) == 0 || next.Spec.JobID != "job1" {
		t.Fatalf("carried %+v", next.Carry)
	}

	// The next run resumes syncing where the first stopped: no new
	// prechecks, no mirror, no "job created" event.
	h2 := newHarness(t)
	h2.at(time.Minute, UpdateCutover)
	h2.env.ExecuteWorkflow(MigrationWorkflow, next)
	if err := h2.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	wantStates(t, h2, ferry.JobCuttingOver, ferry.JobCutoverComplete)
	if slices.Contains(h2.calls, "Mirror") || slices.Contains(h2.calls, "Precheck:source") {
		t.Fatalf("second run repeated work: %v", h2.calls)
	}
}

func TestCancelFromPending(t *testing.T) {
	h := newHarness(t)
	h.at(time.Second, UpdateCancel)
	res, err := h.run(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, h, ferry.JobPending, ferry.JobCancelled)
	if res.State != ferry.JobCancelled || h.reply(UpdateCancel, 0).state != ferry.JobCancelled {
		t.Fatalf("%+v", res)
	}
}

func TestCancelDuringTestCutoverDiscardsTheCopy(t *testing.T) {
	h := newHarness(t)
	spec := testSpec()
	spec.AutoStart = true
	h.at(2*time.Minute, UpdateTestCutover)
	h.at(3*time.Minute, UpdateCancel)
	res, err := h.run(spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != ferry.JobCancelled || res.Status.TestPath != "" || !slices.Contains(h.calls, "EndTest") {
		t.Fatalf("state %s, test path %q, calls %v", res.State, res.Status.TestPath, h.calls)
	}
}

// TestActionRacingAFailureIsAnswered: an action that arrives at the instant
// the mirror fails is either carried out or refused, never left waiting,
// and the workflow completes.
func TestActionRacingAFailureIsAnswered(t *testing.T) {
	h := newHarness(t)
	h.mirror = func(activities.MirrorInput) (activities.MirrorResult, error) {
		return activities.MirrorResult{}, temporal.NewNonRetryableApplicationError("bad root", activities.ErrTypeInvalidRequest, nil)
	}
	h.mirrorAfter = time.Minute
	spec := testSpec()
	spec.AutoStart = true
	h.at(time.Minute, UpdatePause)    // the instant the mirror fails
	h.at(2*time.Minute, UpdateCancel) // ends the job if the pause won
	res, err := h.run(spec)
	r := h.reply(UpdatePause, 0)
	switch {
	case err != nil:
		if !strings.Contains(err.Error(), "bad root") || (r.rejected == nil && r.err == nil) {
			t.Fatalf("failure %v, pause reply %+v", err, r)
		}
	default:
		if r.state != ferry.JobPaused || res.State != ferry.JobCancelled {
			t.Fatalf("pause reply %+v, end %s", r, res.State)
		}
	}
}
