package replicate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
)

// TestWaitDrainedBarrier: changes made immediately before WaitDrained
// (creates, writes, deletes, renames, directory mtime changes — the
// pattern of SQLite closing: WAL and SHM checkpointed and deleted) are all
// on the target the moment WaitDrained returns, with no sleep in between,
// on every one of many iterations.
func TestWaitDrainedBarrier(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	app := filepath.Join(src, "var", "lib", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(app, "app.db"), make([]byte, 64<<10), 0o644)
	s, ctl, from, to := newLibrarySource(t, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
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
