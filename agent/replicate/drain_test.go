package replicate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// TestWaitDrainedBarrier: changes made immediately before WaitDrained
// (creates, writes, deletes, renames, directory mtime changes — the
// pattern of SQLite closing: WAL and SHM checkpointed and deleted) are all
// on the target the moment WaitDrained returns, with no sleep in between,
// on every one of many iterations.
func TestWaitDrainedBarrier(t *testing.T) {
	for _, backend := range []string{"fanotify", "inotify"} {
		t.Run(backend, func(t *testing.T) { testWaitDrainedBarrier(t, backend == "inotify") })
	}
}

func testWaitDrainedBarrier(t *testing.T, inotify bool) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	app := filepath.Join(src, "var", "lib", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(app, "app.db"), make([]byte, 64<<10), 0o644)
	s, ctl, from, to := newLibrarySourceWith(t, src, dst, func(c *replicate.SourceConfig) { c.ForceInotify = inotify })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	if want := map[bool]string{false: "fanotify", true: "inotify"}[inotify]; s.Stats().Backend != want {
		t.Fatalf("capture backend %q, want %q", s.Stats().Backend, want)
	}
	const iterations = 40
	for i := range iterations {
		// The "writer" runs: WAL and SHM exist and grow.
		wal, shm := filepath.Join(app, "app.db-wal"), filepath.Join(app, "app.db-shm")
		os.WriteFile(wal, fmt.Appendf(nil, "wal frames of iteration %d", i), 0o644)
		os.WriteFile(shm, make([]byte, 32<<10), 0o644)
		os.WriteFile(filepath.Join(src, fmt.Sprintf("log-%d", i%3)), fmt.Appendf(nil, "line %d\n", i), 0o644)
		if i%2 == 0 {
			if err := s.WaitDrained(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// The "writer" stops: checkpoint into the db, delete WAL and SHM.
		f, err := os.OpenFile(filepath.Join(app, "app.db"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(fmt.Appendf(nil, "page %d", i), int64(i%16)*4096)
		f.Close()
		os.Remove(wal)
		os.Remove(shm)
		d := filepath.Join(src, fmt.Sprintf("dir-%d", i))
		os.Mkdir(d, 0o755)
		os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o600)
		os.Rename(filepath.Join(d, "f"), filepath.Join(d, "g"))
		if i > 0 {
			os.Rename(filepath.Join(src, fmt.Sprintf("dir-%d", i-1)), filepath.Join(d, "moved"))
		}
		os.Chmod(filepath.Join(src, fmt.Sprintf("log-%d", i%3)), os.FileMode(0o600|i%2*0o044))
		if err := s.WaitDrained(ctx); err != nil {
			t.Fatal(err)
		}
		diffs, err := ctl.Verify(ctx, from, to, mirror.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for j, df := range diffs {
			if j < 10 {
				t.Errorf("iteration %d: difference right after WaitDrained: %+v", i, df)
			}
		}
		if len(diffs) > 0 {
			t.Fatalf("iteration %d: %d differences right after WaitDrained", i, len(diffs))
		}
	}
	if _, err := os.Lstat(filepath.Join(to.Path, "var", "lib", "app", "app.db-wal")); err == nil {
		t.Fatal("app.db-wal still on the target")
	}
	matches, _ := filepath.Glob(filepath.Join(src, ".ferry.barrier.*"))
	tmatches, _ := filepath.Glob(filepath.Join(dst, ".ferry.barrier.*"))
	if len(matches)+len(tmatches) > 0 {
		t.Fatalf("barrier files left: %v %v", matches, tmatches)
	}
}

// TestSyncDrainOverWire: the controller's Drain (what the final sync of a
// cutover uses) answers Drained only once the changes made right before
// it — the WAL and SHM of a closing database deleted — are on the target.
func TestSyncDrainOverWire(t *testing.T) {
	r := newRig(t)
	r.start()
	app := filepath.Join(r.src, "app")
	os.MkdirAll(app, 0o755)
	for i := range 10 {
		wal, shm := filepath.Join(app, "app.db-wal"), filepath.Join(app, "app.db-shm")
		os.WriteFile(wal, fmt.Appendf(nil, "frames %d", i), 0o644)
		os.WriteFile(shm, make([]byte, 32<<10), 0o644)
		os.WriteFile(filepath.Join(app, "app.db"), fmt.Appendf(nil, "db %d", i), 0o644)
		os.Remove(wal)
		os.Remove(shm)
		r.mu.Lock()
		r.last.Drained = false
		r.mu.Unlock()
		if err := r.sess.Drain(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !r.status().Drained {
			if time.Now().After(deadline) {
				t.Fatalf("iteration %d: no Drained status (%+v)", i, r.status())
			}
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		diffs, err := r.ctl.Verify(ctx, r.from(), r.to(), mirror.Options{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			t.Errorf("iteration %d: difference right after Drained: %+v", i, d)
		}
		if len(diffs) > 0 {
			t.FailNow()
		}
	}
}

// TestRestartResendsNothing: a sync session restarted on an unchanged tree
// (what the host activity does after a crash of the control plane)
// resyncs in time mode and sends next to nothing.
func TestRestartResendsNothing(t *testing.T) {
	for _, mode := range []string{wire.ChecksumTime, wire.ChecksumStrict} {
		t.Run(mode, func(t *testing.T) { testRestartResendsNothing(t, mode) })
	}
}

func testRestartResendsNothing(t *testing.T, checksum string) {
	r := newRig(t)
	r.opts.Checksum = checksum
	for i := range 200 {
		p := filepath.Join(r.src, fmt.Sprintf("tree/d%d/f%d", i%10, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, 48<<10)
		for j := range b {
			b[j] = byte(i + j*7)
		}
		os.WriteFile(p, b, 0o644)
	}
	drained := func() wire.SyncStatus {
		t.Helper()
		r.mu.Lock()
		r.last.Drained = false
		r.mu.Unlock()
		if err := r.sess.Drain(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !r.status().Drained {
			if time.Now().After(deadline) {
				t.Fatalf("no Drained status (%+v)", r.status())
			}
			time.Sleep(5 * time.Millisecond)
		}
		return r.status()
	}
	r.start()
	first := drained()
	if first.BytesSent < 200*48<<10 {
		t.Fatalf("first session sent %d bytes, want at least the tree (%d)", first.BytesSent, 200*48<<10)
	}
	r.converge(5 * time.Second)
	for round := range 2 {
		r.stop()
		r.start()
		st := drained()
		t.Logf("restart %d: %d bytes sent (first session: %d)", round, st.BytesSent, first.BytesSent)
		if st.BytesSent > 64<<10 {
			t.Errorf("restart %d on an unchanged tree sent %d bytes, want at most 64 KiB", round, st.BytesSent)
		}
		r.converge(5 * time.Second)
	}
}

// TestSyncLiveBandwidth: a bandwidth schedule set on the source agent for
// the job (Controller.SetBandwidth, what the API's live change uses)
// reaches the running sync: "0" holds shipping, "off" releases it.
func TestSyncLiveBandwidth(t *testing.T) {
	r := newRig(t)
	r.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.ctl.SetBandwidth(ctx, r.sa.addr, "sync-test", "0"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(r.src, "held"), make([]byte, 64<<10), 0o644)
	time.Sleep(time.Second)
	if _, err := os.Lstat(filepath.Join(r.dst, "held")); err == nil {
		if fi, _ := os.Stat(filepath.Join(r.dst, "held")); fi.Size() == 64<<10 {
			t.Fatal("the file was shipped while the schedule forbids transfers")
		}
	}
	if err := r.ctl.SetBandwidth(ctx, r.sa.addr, "sync-test", "off"); err != nil {
		t.Fatal(err)
	}
	r.converge(5 * time.Second)
}
