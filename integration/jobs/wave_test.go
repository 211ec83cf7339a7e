package jobs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/workflows"
)

// TestWaveCutsOverTogether runs three jobs as a wave with a concurrency of
// one: no job leaves pending before the previous is ready, and all are cut
// over once every one is ready.
func TestWaveCutsOverTogether(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	var specs []workflows.JobSpec
	for _, name := range []string{"a", "b", "c"} {
		makeTree(t, src.path(name), 1)
		specs = append(specs, cl.spec(src.ref(), dst.ref(), src.path(name), dst.path(name)))
	}
	waveID := "wave-" + ferry.NewID()
	run, err := cl.c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: waveID, TaskQueue: cl.tq},
		workflows.WaveWorkflow, workflows.WaveInput{WaveID: waveID, Jobs: specs, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range specs {
			cl.c.TerminateWorkflow(context.Background(), s.JobID, "", "test ended")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var st workflows.WaveStatus
	if err := run.Get(ctx, &st); err != nil {
		t.Fatal(err)
	}
	var readyAt, cutAt []time.Time
	for _, s := range specs {
		var ready, cut time.Time
		for _, e := range cl.events(s.JobID) {
			switch {
			case e.Type == ferry.JobEventState && e.ToState == ferry.JobReadyForCutover && ready.IsZero():
				ready = e.Time
			case e.Type == ferry.JobEventState && e.ToState == ferry.JobCuttingOver:
				cut = e.Time
			}
		}
		if d := cl.verify(src.ref(), s.SourcePath, dst.ref(), s.TargetPath); len(d) != 0 {
			t.Fatalf("job %s differs: %v", s.JobID, d)
		}
		readyAt, cutAt = append(readyAt, ready), append(cutAt, cut)
	}
	for _, j := range st.Jobs {
		if j.State != ferry.JobCutoverComplete {
			t.Fatalf("wave status %+v", st)
		}
	}
	recordHistory(t, cl.c, waveID, "wave.json")
	// Every cutover began after the last job became ready.
	last := readyAt[0]
	for _, r := range readyAt {
		if r.After(last) {
			last = r
		}
	}
	for i, c := range cutAt {
		if c.IsZero() || c.Before(last) {
			t.Fatalf("job %d cut over at %s before the last job was ready at %s", i, c, last)
		}
	}
	// Concurrency 1: job i+1 started (left pending) only after job i was ready.
	for i := 1; i < len(specs); i++ {
		var started time.Time
		for _, e := range cl.events(specs[i].JobID) {
			if e.Type == ferry.JobEventState && e.ToState == ferry.JobPrechecking {
				started = e.Time
				break
			}
		}
		if started.Before(readyAt[i-1]) {
			t.Fatalf("job %d started at %s before job %d was ready at %s", i, started, i-1, readyAt[i-1])
		}
	}
}

// TestComparePlanStoresReports: during sync a Temporal Schedule runs the
// compare; its difference report lands as a "compare" job event, and the
// schedule is deleted at cutover.
func TestComparePlanStoresReports(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath := src.path("app")
	makeTree(t, srcPath, 1)
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dst.path("app"))
	spec.AutoStart = true
	spec.CompareEvery = 2 * time.Second
	spec.ReadyStableFor = time.Hour // stay syncing
	cl.start(spec)
	cl.waitState(spec.JobID, ferry.JobSyncing, time.Minute)

	id := activities.CompareScheduleID(spec.JobID)
	deadline := time.Now().Add(45 * time.Second)
	var report *activities.VerifyReport
	for report == nil && time.Now().Before(deadline) {
		for _, e := range cl.events(spec.JobID) {
			if e.Type == ferry.JobEventCompare && strings.HasPrefix(e.Message, "compare:") {
				var r activities.VerifyReport
				if err := json.Unmarshal(e.Details, &r); err != nil {
					t.Fatalf("compare details %s: %v", e.Details, err)
				}
				report = &r
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if report == nil {
		t.Fatal("no compare report stored")
	}
	if report.Files == 0 && report.Count == 0 && !report.Identical {
		t.Fatalf("empty report %+v", report)
	}
	if _, err := cl.c.ScheduleClient().GetHandle(context.Background(), id).Describe(context.Background()); err != nil {
		t.Fatalf("schedule %s while syncing: %v", id, err)
	}
	if _, err := cl.action(spec.JobID, workflows.UpdateCancel); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, err := cl.c.ScheduleClient().GetHandle(context.Background(), id).Describe(context.Background())
		var nf *serviceerror.NotFound
		if errorsAs(err, &nf) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("schedule still there after the job ended: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSyncContinuesAsNew: a long sync continues as new before its history
// grows large, carrying the job's state, and the job still cuts over.
func TestSyncContinuesAsNew(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath, dstPath := src.path("app"), dst.path("app")
	makeTree(t, srcPath, 1)
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dstPath)
	spec.AutoStart = true
	spec.SyncWindow = 500 * time.Millisecond
	spec.MaxHistoryEvents = 60
	first := cl.start(spec)
	st := cl.waitFor(spec.JobID, 90*time.Second, "a continued-as-new run", func(s workflows.Status) bool { return s.Run >= 2 })
	if st.Prechecks == nil || st.Progress.FilesDone == 0 {
		t.Fatalf("state not carried: %+v", st)
	}
	desc, err := cl.c.DescribeWorkflowExecution(context.Background(), spec.JobID, "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.WorkflowExecutionInfo.Execution.RunId == first.GetRunID() {
		t.Fatal("same run after continue-as-new")
	}
	if n := desc.WorkflowExecutionInfo.HistoryLength; n > 200 {
		t.Fatalf("current run's history has %d events", n)
	}
	cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	cl.mustAction(spec.JobID, workflows.UpdateCutover, ferry.JobCuttingOver)
	cl.waitState(spec.JobID, ferry.JobCutoverComplete, time.Minute)
	if d := cl.verify(src.ref(), srcPath, dst.ref(), dstPath); len(d) != 0 {
		t.Fatalf("after cutover: %v", d)
	}
}
