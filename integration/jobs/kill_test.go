package jobs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/workflows"
)

const (
	bigFiles   = 2
	bigFileMiB = 256
)

var (
	bigOnce sync.Once
	bigDir  string
	bigErr  error
)

// bigData writes bigFiles random files of bigFileMiB once per test binary;
// each test hardlinks them into its own source tree.
func bigData(t *testing.T) string {
	t.Helper()
	bigOnce.Do(func() {
		bigDir, bigErr = os.MkdirTemp("", "ferry-kill-data-")
		for i := 0; i < bigFiles && bigErr == nil; i++ {
			var f *os.File
			f, bigErr = os.Create(filepath.Join(bigDir, fmt.Sprintf("big%d.bin", i)))
			if bigErr != nil {
				return
			}
			_, bigErr = io.CopyN(f, rand.Reader, bigFileMiB<<20)
			f.Close()
		}
	})
	if bigErr != nil {
		t.Fatal(bigErr)
	}
	return bigDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	if procsDir != "" {
		os.RemoveAll(procsDir)
	}
	os.Exit(code)
}

// writer changes the source tree until stopped: creates, appends,
// overwrites, renames and deletes.
func writer(t *testing.T, dir string) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			p := filepath.Join(dir, "live", fmt.Sprintf("w%03d.txt", i%50))
			os.MkdirAll(filepath.Dir(p), 0o755)
			switch i % 5 {
			case 0, 1:
				os.WriteFile(p, []byte(fmt.Sprintf("write %d\n", i)), 0o644)
			case 2:
				f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
				if err == nil {
					fmt.Fprintf(f, "append %d\n", i)
					f.Close()
				}
			case 3:
				os.Rename(p, p+".renamed")
			case 4:
				os.Remove(filepath.Join(dir, "live", fmt.Sprintf("w%03d.txt.renamed", (i+25)%50)))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// TestKill9 kills, with SIGKILL, the control worker, the source agent or
// the target agent (each agent is one process: data channel and host
// worker) while the job mirrors or syncs, restarts it, and checks that the
// job still ends in cutover_complete with zero differences. For kills during
// the mirror it reports how many bytes were sent again.
func TestKill9(t *testing.T) {
	for _, victim := range []string{"control", "source", "target"} {
		for _, phase := range []ferry.JobState{ferry.JobMirroring, ferry.JobSyncing} {
			t.Run(victim+"-during-"+string(phase), func(t *testing.T) {
				killDuring(t, victim, phase)
			})
		}
	}
}

func killDuring(t *testing.T, victim string, phase ferry.JobState) {
	cl := newClusterWith(t, true)
	control := cl.startControlProc()
	src, dst := cl.addProcHost("source"), cl.addProcHost("target")
	srcPath, dstPath := src.path("app"), dst.path("app")
	makeTree(t, srcPath, 1)
	var total int64
	if phase == ferry.JobMirroring {
		big := bigData(t)
		for i := range bigFiles {
			name := fmt.Sprintf("big%d.bin", i)
			if err := os.Link(filepath.Join(big, name), filepath.Join(srcPath, "data", name)); err != nil {
				t.Fatal(err)
			}
		}
		total = treeBytes(srcPath)
	}
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dstPath)
	spec.AutoStart = true
	cl.start(spec)
	replica := activities.Layout{JobID: spec.JobID, Target: dstPath}.Replica()
	victimProc := map[string]*proc{"control": control, "source": src.proc, "target": dst.proc}[victim]

	var receivedAtKill int64
	var stopWriter func()
	switch phase {
	case ferry.JobMirroring:
		// Kill once a tenth of the data arrived, observed on the target's
		// disk (not through throttled heartbeats).
		deadline := time.Now().Add(2 * time.Minute)
		for treeBytes(replica) < total/10 {
			if time.Now().After(deadline) {
				t.Fatal("mirror never started")
			}
			time.Sleep(5 * time.Millisecond)
		}
		victimProc.kill9()
		receivedAtKill = treeBytes(replica)
		if receivedAtKill >= total {
			t.Fatalf("the mirror finished before the kill (%d of %d bytes)", receivedAtKill, total)
		}
	case ferry.JobSyncing:
		cl.waitState(spec.JobID, ferry.JobSyncing, time.Minute)
		stopWriter = writer(t, srcPath)
		time.Sleep(time.Second)
		victimProc.kill9()
	}
	t.Logf("killed %s during %s", victim, phase)
	time.Sleep(2 * time.Second)
	victimProc.start()
	if stopWriter != nil {
		time.Sleep(time.Second)
		stopWriter()
	}

	cl.waitState(spec.JobID, ferry.JobReadyForCutover, 3*time.Minute)
	cl.mustAction(spec.JobID, workflows.UpdateCutover, ferry.JobCuttingOver)
	st := cl.waitState(spec.JobID, ferry.JobCutoverComplete, 3*time.Minute)
	if st.LastVerify == nil || !st.LastVerify.Identical {
		t.Fatalf("cutover verify %+v", st.LastVerify)
	}
	if d := cl.verify(src.ref(), srcPath, dst.ref(), dstPath); len(d) != 0 {
		t.Fatalf("%d differences after cutover: %v", len(d), d)
	}
	if phase != ferry.JobMirroring {
		return
	}
	// Bytes sent again: what had arrived when the process died plus what the
	// final mirror attempt sent, beyond the tree's size.
	var res struct {
		Summary activities.MirrorSummary
		Attempt int32
	}
	for _, e := range cl.events(spec.JobID) {
		if e.Type == ferry.JobEventProgress {
			if err := json.Unmarshal(e.Details, &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	resent := res.Summary.BytesSent - res.Summary.Bytes
	if res.Attempt > 1 {
		resent = receivedAtKill + res.Summary.BytesSent - res.Summary.Bytes
	}
	resent = max(resent, 0)
	t.Logf("kill -9 of %s during mirroring: tree %d bytes, %d had arrived at the kill, final attempt %d sent %d; re-sent %d bytes (%.2f%%)",
		victim, res.Summary.Bytes, receivedAtKill, res.Attempt, res.Summary.BytesSent, resent, 100*float64(resent)/float64(res.Summary.Bytes))
	if float64(resent) > 0.05*float64(res.Summary.Bytes) {
		t.Fatalf("re-sent %d bytes, more than 5%% of %d", resent, res.Summary.Bytes)
	}
}

// TestLiveProgress: while the mirror runs, JobStatus shows its heartbeated
// bytes, files, rate and ETA; while syncing, lag.
func TestLiveProgress(t *testing.T) {
	cl := newCluster(t)
	src, dst := cl.addHost("src"), cl.addHost("dst")
	srcPath := src.path("app")
	makeTree(t, srcPath, 1)
	big := bigData(t)
	for i := range bigFiles {
		name := fmt.Sprintf("big%d.bin", i)
		if err := os.Link(filepath.Join(big, name), filepath.Join(srcPath, "data", name)); err != nil {
			t.Fatal(err)
		}
	}
	spec := cl.spec(src.ref(), dst.ref(), srcPath, dst.path("app"))
	spec.AutoStart = true
	spec.HeartbeatTimeout = time.Second // heartbeats reach the server every 0.8 s
	spec.SyncWindow = 5 * time.Minute   // one sync session for the whole test
	cl.start(spec)
	var live workflows.Status
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := workflows.JobStatus(context.Background(), cl.c, spec.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == ferry.JobMirroring && st.Progress.BytesDone > 0 {
			live = st
			break
		}
		if st.State != ferry.JobPending && st.State != ferry.JobPrechecking && st.State != ferry.JobMirroring {
			t.Skipf("the mirror finished (%s) before a heartbeat reached the server: no live progress to check", st.State)
		}
		if time.Now().After(deadline) {
			t.Fatal("no live mirror progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := live.Progress
	if p.BytesTotal < int64(bigFiles)*bigFileMiB<<20 || p.BytesDone > p.BytesTotal || p.RateBytes <= 0 || p.FilesTotal < 120 {
		t.Fatalf("live progress %+v", p)
	}
	t.Logf("live mirror progress: %d/%d bytes, %d/%d files, %.0f MB/s, ETA %s", p.BytesDone, p.BytesTotal, p.FilesDone, p.FilesTotal, p.RateBytes/1e6, p.ETA)
	cl.waitState(spec.JobID, ferry.JobReadyForCutover, time.Minute)
	// A change on the source shows up as applied in the live sync stats.
	time.Sleep(time.Second)
	writeFile(t, filepath.Join(srcPath, "after-ready.txt"), "x")
	deadline = time.Now().Add(30 * time.Second)
	for {
		st, err := workflows.JobStatus(context.Background(), cl.c, spec.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Progress.AppliedTotal > 0 {
			t.Logf("live sync: lag %d ms, backlog %d, applied %d", st.Progress.LagMillis, st.Progress.BacklogRecords, st.Progress.AppliedTotal)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no applied change in the live sync stats: %+v", st.Progress)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
