package workflows

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// TestWaveConcurrencyAndCutoverTogether drives a wave whose child job
// workflows are stubbed: the test plays the jobs' state signals and checks
// that a job starts only when a slot is free and that cutover goes to every
// job once all are ready.
func TestWaveConcurrencyAndCutoverTogether(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var (
		mu       sync.Mutex
		started  = map[string]time.Duration{}
		cutovers = map[string]time.Duration{}
	)
	t0 := env.Now()
	// A stand-in job workflow: it records when it started and when the
	// wave asked it to cut over.
	job := func(ctx workflow.Context, in MigrationInput) (MigrationResult, error) {
		mu.Lock()
		started[in.Spec.JobID] = workflow.Now(ctx).Sub(t0)
		mu.Unlock()
		if !in.Spec.AutoStart || in.Spec.NotifyWorkflowID == "" {
			t.Errorf("child spec %+v", in.Spec)
		}
		var s ActionSignal
		workflow.GetSignalChannel(ctx, SignalAction).Receive(ctx, &s)
		if s.Action != UpdateCutover {
			t.Errorf("signal %+v", s)
		}
		mu.Lock()
		cutovers[in.Spec.JobID] = workflow.Now(ctx).Sub(t0)
		mu.Unlock()
		return MigrationResult{}, workflow.Sleep(ctx, time.Hour)
	}
	env.RegisterWorkflowWithOptions(job, workflow.RegisterOptions{Name: "MigrationWorkflow"})
	signal := func(at time.Duration, job string, state ferry.JobState) {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalJobState, JobStateSignal{JobID: job, State: state}) }, at)
	}
	// a: ready at 10 min; b: ready at 20 min; c: ready at 25 min; all cut
	// over by 30 min.
	signal(time.Minute, "a", ferry.JobPrechecking)
	signal(2*time.Minute, "a", ferry.JobSyncing) // still holds its slot
	signal(10*time.Minute, "a", ferry.JobReadyForCutover)
	signal(11*time.Minute, "b", ferry.JobMirroring)
	signal(20*time.Minute, "b", ferry.JobReadyForCutover)
	signal(21*time.Minute, "c", ferry.JobMirroring)
	signal(25*time.Minute, "c", ferry.JobReadyForCutover)
	for _, id := range []string{"a", "b", "c"} {
		signal(29*time.Minute, id, ferry.JobCuttingOver)
		signal(30*time.Minute, id, ferry.JobCutoverComplete)
	}

	var specs []JobSpec
	for _, id := range []string{"a", "b", "c"} {
		s := testSpec()
		s.JobID = id
		specs = append(specs, s)
	}
	env.ExecuteWorkflow(WaveWorkflow, WaveInput{WaveID: "w1", Jobs: specs, Concurrency: 1})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var st WaveStatus
	env.GetWorkflowResult(&st)
	if st.Phase != "done" || slices.ContainsFunc(st.Jobs, func(j WaveJob) bool { return j.State != ferry.JobCutoverComplete }) {
		t.Fatalf("wave status %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if started["a"] >= time.Minute || started["b"] < 10*time.Minute || started["c"] < 20*time.Minute {
		t.Fatalf("jobs started at %v with a concurrency of 1", started)
	}
	for _, id := range []string{"a", "b", "c"} {
		if c, ok := cutovers[id]; !ok || c < 25*time.Minute {
			t.Fatalf("cutover of %s at %s (asked %v), before every job was ready", id, c, ok)
		}
	}
}

func TestWaveFailsWhenAJobFails(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(MigrationWorkflow)
	env.OnWorkflow(MigrationWorkflow, mock.Anything, mock.Anything).Return(MigrationResult{}, nil).After(time.Hour)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalJobState, JobStateSignal{JobID: "a", State: ferry.JobReadyForCutover})
		env.SignalWorkflow(SignalJobState, JobStateSignal{JobID: "b", State: ferry.JobFailed, Message: "precheck failed: target free space"})
	}, time.Minute)
	a, b := testSpec(), testSpec()
	a.JobID, b.JobID = "a", "b"
	env.ExecuteWorkflow(WaveWorkflow, WaveInput{WaveID: "w1", Jobs: []JobSpec{a, b}})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "b is failed (precheck failed: target free space)") {
		t.Fatalf("got %v", err)
	}
}

func TestCompareWorkflowStoresReport(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var h *activities.Host
	var c *activities.Controller
	env.RegisterActivity(h)
	env.RegisterActivity(c)
	report := activities.VerifyReport{Count: 1, Differences: []activities.Difference{{Path: "x", Kind: "content"}}}
	env.OnActivity(h.Verify, mock.Anything, mock.Anything).Return(activities.VerifyResult{Report: report}, nil)
	var stored activities.RecordCompareInput
	env.OnActivity(c.RecordCompare, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordCompareInput) (activities.RecordCompareResult, error) {
			stored = in
			return activities.RecordCompareResult{ID: 7}, nil
		})
	env.ExecuteWorkflow(CompareWorkflow, activities.CompareSpec{JobID: "j1", SourceHost: "src", TargetHost: "dst"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if stored.JobID != "j1" || stored.Report.Count != 1 || stored.Report.Differences[0].Path != "x" {
		t.Fatalf("stored %+v", stored)
	}
}
