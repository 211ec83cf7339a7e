package jobs

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
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
	os.Exit(code)
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
