package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/pki"
)

// testEnv is a CA, two in-process agents on loopback and a controller.
type testEnv struct {
	ca       string
	src, dst *Agent
	ctl      *Controller
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func newCA(t testing.TB) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca")
	if err := pki.InitCA(ca, "test CA"); err != nil {
		t.Fatal(err)
	}
	return ca
}

func startAgent(t testing.TB, ca, name string, ckpt int64) *Agent {
	t.Helper()
	dir := t.TempDir()
	id, err := pki.LoadOrIssue(ca, filepath.Join(dir, "identity"), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), ServerTLS: id.ServerTLS(),
		ClientTLS: id.ClientTLS(), Log: quietLog(), CheckpointBytes: ckpt})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func controllerFor(t testing.TB, ca string) *Controller {
	t.Helper()
	id, err := pki.LoadOrIssue(ca, filepath.Join(t.TempDir(), "cli"), "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Controller{TLS: id.ClientTLS()}
}

func newEnv(t testing.TB) *testEnv {
	ca := newCA(t)
	return &testEnv{ca: ca, src: startAgent(t, ca, "src", 0), dst: startAgent(t, ca, "dst", 0), ctl: controllerFor(t, ca)}
}

func (e *testEnv) endpoints(src, dst string) (Endpoint, Endpoint) {
	return Endpoint{Addr: e.src.Addr().String(), Path: src}, Endpoint{Addr: e.dst.Addr().String(), Path: dst}
}

func (e *testEnv) mirror(t testing.TB, src, dst string, opts mirror.Options) (mirror.Summary, error) {
	t.Helper()
	from, to := e.endpoints(src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.ctl.Mirror(ctx, MirrorRequest{From: from, To: to, Opts: opts}, nil)
}

func (e *testEnv) verify(t testing.TB, src, dst string, opts mirror.Options) []mirror.Difference {
	t.Helper()
	from, to := e.endpoints(src, dst)
	d, err := e.ctl.Verify(context.Background(), from, to, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
