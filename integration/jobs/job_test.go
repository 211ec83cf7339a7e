package jobs

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/workflows"
)

// makeTree writes a small application tree: nested directories, many small
// files, one large random file, a symlink and a hardlink.
func makeTree(t *testing.T, dir string, bigMiB int) {
	t.Helper()
	for i := range 120 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%6), fmt.Sprintf("f%03d.txt", i))
		writeFile(t, p, strings.Repeat(fmt.Sprintf("line %d\n", i), i+1))
	}
	big := make([]byte, bigMiB<<20)
	rand.Read(big)
	writeFile(t, filepath.Join(dir, "data", "big.bin"), string(big))
	if err := os.Symlink("d0/f000.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "d1", "f001.txt"), filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestJobFromPendingToCutoverComplete runs one job through every step with
// two real agents and two host workers: prechecks, mirror, sync while the
// source changes, cutover with hooks, and checks the target through the
// agents' verify, the previous contents, the job's events in the store and
// the search attributes.
func TestJobFromPendingToCutoverComplete(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath, dstPath := src.path("srv", "app"), dst.path("srv", "app")
	makeTree(t, srcPath, 8)
	writeFile(t, filepath.Join(dstPath, "old-version"), "the target's previous contents")

	spec := cl.spec(src.ref(), dst.ref(), srcPath, dstPath)
	marker := dst.path("post-cutover-ran")
	spec.PreCutover = []activities.Hook{{Name: "stop-app", Command: []string{"sh", "-c", "echo stopped > " + src.path("stopped")}, MustSucceed: true}}
	spec.PostCutover = []activities.Hook{{Name: "start-app", Command: []string{"sh", "-c", `test -f "$FERRY_TARGET_PATH/data/big.bin" && echo ok > ` + marker}, MustSucceed: true}}
	spec.RollbackWindow = 2 * time.Second
	run := cl.start(spec)

	st := cl.waitState(spec.JobID, ferry.JobPending, 10*time.Second)
	if st.State != ferry.JobPending {
		t.Fatal(st.State)
	}
	if _, err := cl.action(spec.JobID, workflows.UpdateCutover); err == nil || !strings.Contains(err.Error(), "cannot cutover: job is pending") {
		t.Fatalf("cutover in pending: %v", err)
	}
	cl.mustAction(spec.JobID, workflows.UpdateStart, ferry.JobPrechecking)
	cl.waitState(spec.JobID, ferry.JobSyncing, time.Minute)

	// Changes while syncing: a new file, a changed file, a deleted file.
	writeFile(t, filepath.Join(srcPath, "new", "during-sync.txt"), "written while syncing")
	writeFile(t, filepath.Join(srcPath, "d2", "f002.txt"), "changed while syncing")
	if err := os.Remove(filepath.Join(srcPath, "d3", "f003.txt")); err != nil {
		t.Fatal(err)
	}
	ready := cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	if ready.Progress.FilesDone < 120 || ready.Progress.BytesDone < 8<<20 {
		t.Fatalf("mirror progress %+v", ready.Progress)
	}
	for _, c := range ready.Prechecks {
		if !c.OK {
			t.Errorf("precheck %s: %s", c.Name, c.Detail)
		}
	}
	cl.mustAction(spec.JobID, workflows.UpdateCutover, ferry.JobCuttingOver)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.MigrationResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.State != ferry.JobCutoverComplete {
		t.Fatalf("ended %s: %s", res.State, res.Status.LastError)
	}
	if d := cl.verify(src.ref(), srcPath, dst.ref(), dstPath); len(d) != 0 {
		t.Fatalf("target differs from source after cutover: %v", d)
	}
	l := activities.Layout{JobID: spec.JobID, Target: dstPath}
	if readFile(t, filepath.Join(l.Previous(), "old-version")) != "the target's previous contents" {
		t.Fatal("previous contents not kept")
	}
	if readFile(t, marker) != "ok\n" || readFile(t, src.path("stopped")) != "stopped\n" {
		t.Fatal("hooks did not run")
	}

	want := []ferry.JobState{ferry.JobPending, ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing,
		ferry.JobReadyForCutover, ferry.JobCuttingOver, ferry.JobCutoverComplete}
	evs := cl.events(spec.JobID)
	if got := stateTrail(evs); !slices.Equal(got, want) {
		t.Fatalf("state events %v, want %v", got, want)
	}
	job, err := cl.db.FindJobByID(context.Background(), spec.JobID)
	if err != nil || job.State != ferry.JobCutoverComplete {
		t.Fatalf("stored job state %v %v", job, err)
	}
	var prechecks, compares int
	for _, e := range evs {
		switch e.Type {
		case ferry.JobEventPrecheck:
			prechecks++
		case ferry.JobEventCompare:
			compares++
		}
	}
	if prechecks < 8 || compares != 1 {
		t.Fatalf("%d precheck events, %d compare events", prechecks, compares)
	}

	// The Temporal UI filters jobs by the search attributes.
	q := fmt.Sprintf("FerryJobState = 'cutover_complete' AND FerrySourceHost = '%s' AND FerryTargetHost = '%s'", src.ID, dst.ID)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := cl.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == spec.JobID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("search %q found %d executions", q, len(resp.Executions))
		}
		time.Sleep(200 * time.Millisecond)
	}
	recordHistory(t, cl.c, spec.JobID, "job_to_cutover_complete.json")
}

var _ = client.WorkflowUpdateStageCompleted
