package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/replicate/workload"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// rig is a CA, a source and a target agent process (the target behind a
// proxy that can cut connections), a controller and a running sync.
type rig struct {
	t        *testing.T
	ca       string
	ctl      *agent.Controller
	src, dst string // trees
	sdir     string // source agent data dir
	tdir     string
	sa, ta   *childAgent
	px       *proxy
	opts     mirror.Options // the job's options (zero: defaults)

	mu    sync.Mutex
	last  wire.SyncStatus
	sess  *agent.SyncSession
	ended chan struct{}
}

func newRig(t *testing.T) *rig {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the fidelity of owners, xattrs and fanotify capture")
	}
	r := &rig{t: t, ca: newCA(t), src: t.TempDir(), dst: t.TempDir(), sdir: t.TempDir(), tdir: t.TempDir()}
	r.ctl = controllerFor(t, r.ca)
	r.sa = spawnAgent(t, r.ca, r.sdir)
	r.ta = spawnAgent(t, r.ca, r.tdir)
	r.px = newProxy(t, r.ta.addr)
	// Some content before the sync starts, for the initial mirror.
	for i := range 20 {
		p := filepath.Join(r.src, fmt.Sprintf("pre/d%d/f%d", i%4, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(fmt.Sprint("pre-existing ", i)), 0o644)
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *rig) from() agent.Endpoint { return agent.Endpoint{Addr: r.sa.addr, Path: r.src} }
func (r *rig) to() agent.Endpoint   { return agent.Endpoint{Addr: r.px.addr(), Path: r.dst} }

// start starts (or restarts) the sync and waits until it is syncing.
func (r *rig) start() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sess *agent.SyncSession
	var err error
	for try := 0; try < 50; try++ {
		sess, err = r.ctl.StartSync(ctx, agent.SyncRequest{JobID: "sync-test", From: r.from(), To: r.to(), Opts: r.opts})
		if err == nil {
			var st wire.SyncStatus
			st, err = sess.Next()
			if err == nil {
				r.mu.Lock()
				r.last = st
				r.mu.Unlock()
				break
			}
			sess.Stop()
		}
		if !errors.Is(err, wire.ErrBusy) {
			r.t.Fatalf("start sync: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("start sync: %v", err)
	}
	r.sess, r.ended = sess, make(chan struct{})
	go func() {
		defer close(r.ended)
		for {
			st, err := sess.Next()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.last = st
			r.mu.Unlock()
			if st.State == replicate.StateStopped {
				return
			}
		}
	}()
	r.waitState(replicate.StateSyncing, 30*time.Second)
}

func (r *rig) status() wire.SyncStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *rig) waitState(state string, d time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for r.status().State != state {
		if time.Now().After(deadline) {
			r.t.Fatalf("sync state %q after %s, want %q (%+v)", r.status().State, d, state, r.status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) stop() {
	if r.sess != nil {
		// The status reader owns the connection: ask for the stop and let
		// it read up to the final status.
		r.sess.Cancel()
		select {
		case <-r.ended:
		case <-time.After(30 * time.Second):
			r.t.Error("sync did not stop")
		}
		r.sess.Close()
		r.sess = nil
	}
}

// converge polls a full compare until it reports no difference; it fails
// the test after limit.
func (r *rig) converge(limit time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	var diffs []mirror.Difference
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		d, err := r.ctl.Verify(ctx, r.from(), r.to(), mirror.Options{})
		cancel()
		if err != nil {
			r.t.Fatalf("verify: %v", err)
		}
		diffs = d
		if len(diffs) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, d := range diffs {
		if i == 15 {
			break
		}
		r.t.Errorf("difference: %+v", d)
	}
	r.t.Fatalf("%d differences %s after the writer stopped (status %+v)", len(diffs), limit, r.status())
	return 0
}

// work runs the workload for d and calls mid once, halfway.
func (r *rig) work(seed uint64, d time.Duration, mid func()) workload.Stats {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st workload.Stats
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rate := 400
		if v, err := strconv.Atoi(os.Getenv("FERRY_TEST_RATE")); err == nil {
			rate = v // heavier runs by hand
		}
		st, err = workload.Run(ctx, workload.Config{Root: r.src, Seed: seed, Rate: rate, Duration: d})
	}()
	if mid != nil {
		time.Sleep(d / 2)
		mid()
	}
	<-done
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("workload: %d ops %v", st.Ops, st.ByKind)
	return st
}

func TestSyncConverges(t *testing.T) {
	r := newRig(t)
	r.start()
	r.work(1, 3*time.Second, nil)
	took := r.converge(5 * time.Second)
	st := r.status()
	t.Logf("converged %s after the writer stopped; status %+v", took, st)
	if st.AppliedTotal == 0 {
		t.Errorf("no record applied: %+v", st)
	}
	// Pause: changes are journaled, not shipped; resume ships them.
	if err := r.sess.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	os.WriteFile(filepath.Join(r.src, "while-paused"), []byte("x"), 0o600)
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Lstat(filepath.Join(r.dst, "while-paused")); err == nil {
		t.Errorf("a change was applied while paused")
	}
	if st := r.status(); st.State != replicate.StatePaused || st.BacklogRecords == 0 {
		t.Errorf("paused status %+v, want state paused with a backlog", st)
	}
	if err := r.sess.Resume(); err != nil {
		t.Fatal(err)
	}
	r.converge(5 * time.Second)
}

func TestSyncKillSource(t *testing.T) {
	r := newRig(t)
	r.start()
	r.work(2, 3*time.Second, func() {
		r.sa.kill9()
		<-r.ended
		r.sess = nil
		r.sa = spawnAgent(t, r.ca, r.sdir)
		r.start()
	})
	r.converge(10 * time.Second)
}

func TestSyncKillTarget(t *testing.T) {
	r := newRig(t)
	r.start()
	r.work(3, 3*time.Second, func() {
		r.ta.kill9()
		time.Sleep(200 * time.Millisecond)
		r.ta = spawnAgent(t, r.ca, r.tdir)
		r.px.setBackend(r.ta.addr)
	})
	r.converge(10 * time.Second)
}

func TestSyncCutConnection(t *testing.T) {
	r := newRig(t)
	r.start()
	r.work(4, 3*time.Second, func() {
		r.px.cut()
		time.Sleep(300 * time.Millisecond)
		r.px.cut()
	})
	r.converge(5 * time.Second)
}

// TestSyncWriteThroughLinkInRenamedDir: a write through the name of a
// multiply linked file whose directory is renamed before the write ships
// (its record is skipped, the path has vanished) must still reach the
// target: the rename ships the moved name as a link that carries the
// content. (Seen in TestSyncKillSource: the link was shipped without it
// and the group kept its old size.)
func TestSyncWriteThroughLinkInRenamedDir(t *testing.T) {
	r := newRig(t)
	r.start()
	first, dir := filepath.Join(r.src, "first"), filepath.Join(r.src, "dir")
	if err := os.WriteFile(first, []byte("shared inode, before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Ship the file alone first: the shipper then knows it by inode and
	// ships the second name as a link to it.
	r.converge(5 * time.Second)
	if err := os.Link(first, filepath.Join(dir, "second")); err != nil {
		t.Fatal(err)
	}
	r.converge(5 * time.Second)
	// Journal the write and the rename with shipping paused, so the write
	// ships after its path has vanished.
	if err := r.sess.Pause(); err != nil {
		t.Fatal(err)
	}
	r.waitState(replicate.StatePaused, 5*time.Second)
	f, err := os.OpenFile(filepath.Join(dir, "second"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("appended through the second name\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // capture journals the write under dir/ first
	if err := os.Rename(dir, filepath.Join(r.src, "moved")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := r.sess.Resume(); err != nil {
		t.Fatal(err)
	}
	r.converge(5 * time.Second)
	a, errA := os.Stat(filepath.Join(r.dst, "first"))
	b, errB := os.Stat(filepath.Join(r.dst, "moved", "second"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("target names not one inode: %v %v", errA, errB)
	}
}
