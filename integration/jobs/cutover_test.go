package jobs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/workflows"
)

// TestTestCutoverEndTestCutover: the test copy is usable while replication
// continues into the replica; ending the test discards it; the real cutover
// then goes through.
func TestTestCutoverEndTestCutover(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath, dstPath := src.path("app"), dst.path("app")
	makeTree(t, srcPath, 1)
	writeFile(t, filepath.Join(dstPath, "old"), "old")
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dstPath)
	spec.AutoStart = true
	spec.TestHooks = []activities.Hook{{Name: "smoke", Command: []string{"sh", "-c", `test -f "$FERRY_TEST_PATH/data/big.bin"`}, MustSucceed: true}}
	cl.start(spec)
	l := activities.Layout{JobID: spec.JobID, Target: dstPath}

	cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	cl.mustAction(spec.JobID, workflows.UpdateTestCutover, ferry.JobTestCutover)
	if d := cl.verify(src.ref(), srcPath, dst.ref(), l.Test()); len(d) != 0 {
		t.Fatalf("test copy differs from the source: %v", d)
	}
	if readFile(t, filepath.Join(dstPath, "old")) != "old" {
		t.Fatal("test cutover touched the live target")
	}
	if _, err := cl.action(spec.JobID, workflows.UpdateCutover); err == nil || !strings.Contains(err.Error(), "cannot cutover: job is test_cutover") {
		t.Fatalf("cutover during the test: %v", err)
	}
	// Replication continues during the test: a change reaches the replica,
	// not the test copy.
	writeFile(t, filepath.Join(srcPath, "during-test.txt"), "x")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(l.Replica(), "during-test.txt")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("change made during the test never reached the replica")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(l.Test(), "during-test.txt")); !os.IsNotExist(err) {
		t.Fatalf("test copy follows the source: %v", err)
	}
	cl.mustAction(spec.JobID, workflows.UpdateEndTest, ferry.JobReadyForCutover)
	if _, err := os.Stat(l.Test()); !os.IsNotExist(err) {
		t.Fatalf("test copy not discarded: %v", err)
	}
	cl.mustAction(spec.JobID, workflows.UpdateCutover, ferry.JobCuttingOver)
	cl.waitState(spec.JobID, ferry.JobCutoverComplete, time.Minute)
	if d := cl.verify(src.ref(), srcPath, dst.ref(), dstPath); len(d) != 0 {
		t.Fatalf("target differs after cutover: %v", d)
	}
	recordHistory(t, cl.c, spec.JobID, "test_cutover_end_test_cutover.json")
}

// TestRollbackAfterCutover: rollback restores the target's previous contents
// and returns the job to syncing; the replica keeps following the source and
// a second cutover carries the changes made meanwhile.
func TestRollbackAfterCutover(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath, dstPath := src.path("app"), dst.path("app")
	makeTree(t, srcPath, 1)
	writeFile(t, filepath.Join(dstPath, "old"), "old")
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dstPath)
	spec.AutoStart = true
	cl.start(spec)

	cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	cl.mustAction(spec.JobID, workflows.UpdateCutover, ferry.JobCuttingOver)
	cl.waitState(spec.JobID, ferry.JobCutoverComplete, time.Minute)
	if d := cl.verify(src.ref(), srcPath, dst.ref(), dstPath); len(d) != 0 {
		t.Fatalf("after cutover: %v", d)
	}
	cl.mustAction(spec.JobID, workflows.UpdateRollback, ferry.JobRolledBack)
	if readFile(t, filepath.Join(dstPath, "old")) != "old" {
		t.Fatal("rollback did not restore the previous contents")
	}
	if _, err := os.Stat(filepath.Join(dstPath, "data")); !os.IsNotExist(err) {
		t.Fatalf("migrated tree still live after rollback: %v", err)
	}
	cl.waitState(spec.JobID, ferry.JobSyncing, 30*time.Second)
	writeFile(t, filepath.Join(srcPath, "after-rollback.txt"), "changed after the rollback")
	cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	cl.mustAction(spec.JobID, workflows.UpdateCutover, ferry.JobCuttingOver)
	cl.waitState(spec.JobID, ferry.JobCutoverComplete, time.Minute)
	if d := cl.verify(src.ref(), srcPath, dst.ref(), dstPath); len(d) != 0 {
		t.Fatalf("after the second cutover: %v", d)
	}
	if readFile(t, filepath.Join(dstPath, "after-rollback.txt")) != "changed after the rollback" {
		t.Fatal("change made after the rollback missing")
	}
	trail := stateTrail(cl.events(spec.JobID))
	want := []ferry.JobState{ferry.JobCutoverComplete, ferry.JobRolledBack, ferry.JobSyncing}
	found := false
	for i := range trail {
		if i+3 <= len(trail) && trail[i] == want[0] && trail[i+1] == want[1] && trail[i+2] == want[2] {
			found = true
		}
	}
	if !found {
		t.Fatalf("state trail %v lacks %v", trail, want)
	}
	recordHistory(t, cl.c, spec.JobID, "rollback_after_cutover.json")
}

// TestWaitsForOfflineHostAndFailsAfterGrace: with the target's worker down the
// job shows that it waits for that host and carries on when it returns; a
// host that never returns fails the job with a clear reason.
func TestWaitsForOfflineHostAndFailsAfterGrace(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath := src.path("app")
	makeTree(t, srcPath, 1)

	dst.stopWorker()
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dst.path("app"))
	spec.AutoStart = true
	cl.start(spec)
	st := cl.waitFor(spec.JobID, 30*time.Second, "waiting for the target host", func(s workflows.Status) bool {
		return s.WaitingForHost() && s.WaitingForHosts[0].Host == dst.ID
	})
	if st.State != ferry.JobPrechecking {
		t.Fatalf("waiting in %s", st.State)
	}
	dst.startWorker()
	cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	if st, _ := cl.status(spec.JobID); st.WaitingForHost() {
		t.Fatalf("still waiting: %+v", st.WaitingForHosts)
	}
	var sawWait, sawBack bool
	for _, e := range cl.events(spec.JobID) {
		if e.Type == ferry.JobEventHost {
			sawWait = sawWait || strings.Contains(e.Message, "waiting for host "+dst.ID)
			sawBack = sawBack || strings.Contains(e.Message, "host "+dst.ID+" is back")
		}
	}
	if !sawWait || !sawBack {
		t.Fatal("host events missing")
	}

	// A second job whose target never comes back.
	gone := cl.addHost("gone")
	gone.stopWorker()
	spec2 := cl.spec(src.ref(), gone.ref(), srcPath, gone.path("app"))
	spec2.AutoStart = true
	spec2.HostGracePeriod = 8 * time.Second
	run := cl.start(spec2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run.Get(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "host "+gone.ID+" has been offline") || !strings.Contains(err.Error(), "grace period of 8s") {
		t.Fatalf("want a host-offline failure, got %v", err)
	}
	job, _ := cl.db.FindJobByID(ctx, spec2.JobID)
	if job.State != ferry.JobFailed || !strings.Contains(job.StateReason, "offline") {
		t.Fatalf("stored job %s %q", job.State, job.StateReason)
	}
}

// TestRemoveJobData: after a job is cancelled, RemoveJobDataWorkflow deletes
// its staging directory on the target and leaves the live target alone.
func TestRemoveJobData(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath, dstPath := src.path("app"), dst.path("app")
	makeTree(t, srcPath, 1)
	writeFile(t, filepath.Join(dstPath, "old"), "old")
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dstPath)
	spec.AutoStart = true
	run := cl.start(spec)
	cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	cl.mustAction(spec.JobID, workflows.UpdateCancel, ferry.JobCancelled)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	l := activities.Layout{JobID: spec.JobID, Target: dstPath}
	if _, err := os.Stat(l.Replica()); err != nil {
		t.Fatalf("cancel removed the replica: %v", err)
	}
	rm, err := cl.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "remove-" + spec.JobID, TaskQueue: cl.tq},
		workflows.RemoveJobDataWorkflow, workflows.RemoveJobDataInput{JobID: spec.JobID, TargetHost: dst.ID, TargetPath: dstPath})
	if err != nil {
		t.Fatal(err)
	}
	var res activities.DiscardJobResult
	if err := rm.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Staging()); !os.IsNotExist(err) || res.Removed != l.Staging() {
		t.Fatalf("staging %s still there (%v), result %+v", l.Staging(), err, res)
	}
	if readFile(t, filepath.Join(dstPath, "old")) != "old" {
		t.Fatal("live target touched")
	}
}
