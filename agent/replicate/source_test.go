package replicate_test

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/wire"
)

func startAgent(t *testing.T, ca, name string) (*agent.Agent, *pki.Identity) {
	t.Helper()
	dir := t.TempDir()
	id, err := pki.LoadOrIssue(ca, filepath.Join(dir, "identity"), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), ServerTLS: id.ServerTLS(),
		ClientTLS: id.ClientTLS(), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, id
}

// TestJournalFullRemirrors drives the library API: with shipping paused,
// a small journal overflows; the sync reports remirror_required, and after
// Resume it resyncs with a mirror and converges — no change lost, the
// journal never beyond its bound.
func TestJournalFullRemirrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	ca := newCA(t)
	sa, sid := startAgent(t, ca, "src")
	ta, _ := startAgent(t, ca, "dst")
	ctl := controllerFor(t, ca)
	src, dst, data := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "before"), []byte("before the sync"), 0o644)
	from := agent.Endpoint{Addr: sa.Addr().String(), Path: src}
	to := agent.Endpoint{Addr: ta.Addr().String(), Path: dst}
	var mirrors atomic.Int32
	cfg := replicate.SourceConfig{JobID: "full", Root: src, DataDir: data, TargetRoot: dst, JournalMaxBytes: 64 << 10,
		Log:  quietLog(),
		Dial: func(ctx context.Context) (*wire.Conn, error) { return agent.Dial(ctx, to.Addr, sid.ClientTLS()) },
		Mirror: func(ctx context.Context, sub string) (mirror.Summary, error) {
			mirrors.Add(1)
			f, d := from, to
			f.Path, d.Path = path.Join(src, sub), path.Join(dst, sub)
			return ctl.Mirror(ctx, agent.MirrorRequest{From: f, To: d,
				Opts: mirror.Options{Orphans: wire.OrphansDelete}}, nil)
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := replicate.StartSource(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats(); got.State != replicate.StateSyncing || mirrors.Load() != 1 {
		t.Fatalf("after start: %+v, %d mirrors; want syncing after 1 mirror", got, mirrors.Load())
	}
	s.Pause()
	for i := range 2000 {
		os.WriteFile(filepath.Join(src, fmt.Sprintf("paused-%04d-with-a-long-name-to-fill-the-journal", i)), []byte{byte(i)}, 0o644)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().State != replicate.StateRemirrorRequired {
		if time.Now().After(deadline) {
			t.Fatalf("state %+v, want %s", s.Stats(), replicate.StateRemirrorRequired)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Lstat(filepath.Join(dst, "paused-0000-with-a-long-name-to-fill-the-journal")); err == nil {
		t.Fatal("a change was applied while paused")
	}
	s.Resume()
	os.WriteFile(filepath.Join(src, "after-resume"), []byte("x"), 0o600)
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	diffs, err := ctl.Verify(ctx, from, to, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("difference: %+v", d)
	}
	if mirrors.Load() < 2 {
		t.Errorf("%d mirrors, want at least 2 (initial and resync; a second overflow may add one)", mirrors.Load())
	}
	// The drain barrier's removal touches the root's times once more:
	// the backlog empties once that ships.
	st := s.Stats()
	for end := time.Now().Add(3 * time.Second); (st.BacklogRecords != 0 || st.State != replicate.StateSyncing) && time.Now().Before(end); st = s.Stats() {
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("after resync: %+v", st)
	if st.BacklogRecords != 0 || st.State != replicate.StateSyncing {
		t.Errorf("stats %+v, want syncing with no backlog", st)
	}
}

// newLibrarySource starts two in-process agents and a Source through the
// library API (the way the host activities call it), synced and drained.
func newLibrarySource(t *testing.T, src, dst string) (*replicate.Source, *agent.Controller, agent.Endpoint, agent.Endpoint) {
	t.Helper()
	return newLibrarySourceWith(t, src, dst, nil)
}

// newLibrarySourceWith is newLibrarySource with edit applied to the
// config (nil: none).
func newLibrarySourceWith(t *testing.T, src, dst string, edit func(*replicate.SourceConfig)) (*replicate.Source, *agent.Controller, agent.Endpoint, agent.Endpoint) {
	t.Helper()
	ca := newCA(t)
	sa, sid := startAgent(t, ca, "src")
	ta, _ := startAgent(t, ca, "dst")
	ctl := controllerFor(t, ca)
	from := agent.Endpoint{Addr: sa.Addr().String(), Path: src}
	to := agent.Endpoint{Addr: ta.Addr().String(), Path: dst}
	cfg := replicate.SourceConfig{JobID: t.Name(), Root: src, DataDir: t.TempDir(), TargetRoot: dst, Log: quietLog(),
		Dial: func(ctx context.Context) (*wire.Conn, error) { return agent.Dial(ctx, to.Addr, sid.ClientTLS()) },
		Mirror: func(ctx context.Context, sub string) (mirror.Summary, error) {
			f, d := from, to
			f.Path, d.Path = path.Join(src, sub), path.Join(dst, sub)
			return ctl.Mirror(ctx, agent.MirrorRequest{From: f, To: d, Opts: mirror.Options{Orphans: wire.OrphansDelete}}, nil)
		}}
	if edit != nil {
		edit(&cfg)
	}
	s, err := replicate.StartSource(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s, ctl, from, to
}

// drainedIdentical waits until everything changed on the source so far is
// applied (WaitDrained) and reports every difference the mirror's verify
// still finds between the trees, naming the step.
func drainedIdentical(t *testing.T, ctx context.Context, s *replicate.Source, ctl *agent.Controller, from, to agent.Endpoint, step string) {
	t.Helper()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	diffs, err := ctl.Verify(ctx, from, to, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s: difference %+v", step, d)
	}
}

// TestLargeFileDelta: a block overwritten in a large file ships about one
// block, an append ships about the appended bytes (applied in place), and
// the trees stay identical.
func TestLargeFileDelta(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	s, ctl, from, to := newLibrarySource(t, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(src, "big")
	data := make([]byte, 12<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	step := func(what string, change func(), maxBytes int64) {
		t.Helper()
		before := s.Stats().ContentBytes
		change()
		drainedIdentical(t, ctx, s, ctl, from, to, what)
		sent := s.Stats().ContentBytes - before
		t.Logf("%s: %d content bytes shipped", what, sent)
		if sent > maxBytes {
			t.Errorf("%s: shipped %d bytes, want at most %d", what, sent, maxBytes)
		}
	}
	step("create", func() { os.WriteFile(big, data, 0o644) }, 4*int64(len(data)))
	step("overwrite 4 KiB", func() {
		f, _ := os.OpenFile(big, os.O_WRONLY, 0)
		f.WriteAt([]byte("changed block, changed block...."), 5<<20+100)
		f.Close()
	}, 2*replicate.BlockSize)
	step("append 1 MiB", func() {
		f, _ := os.OpenFile(big, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(data[:1<<20])
		f.Close()
	}, 1<<20+replicate.BlockSize)
}
