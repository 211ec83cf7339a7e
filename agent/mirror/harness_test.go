package mirror

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// pair returns two connected wire.Conns over loopback TCP.
func pair(t testing.TB) (*wire.Conn, *wire.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return wire.NewConn(a), wire.NewConn(b)
}

type result struct {
	sum  Summary
	serr error
	tsum TargetSummary
	rerr error
}

// mirrorOnce runs a sender and a receiver against each other.
func mirrorOnce(t testing.TB, src, dst, dataDir string, opts Options, tweak func(*Sender, *Receiver)) result {
	t.Helper()
	sc, rc := pair(t)
	s := &Sender{Job: Job{ID: "job1", Root: src, Opts: opts}, Conn: sc}
	r := &Receiver{Job: Job{ID: "job1", Root: dst, Opts: opts}, Conn: rc, DataDir: dataDir}
	if tweak != nil {
		tweak(s, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var res result
	done := make(chan struct{})
	go func() {
		defer close(done)
		res.tsum, res.rerr = r.Run(ctx)
	}()
	res.sum, res.serr = s.Run(ctx)
	<-done
	return res
}

// mustMirror runs mirrorOnce and fails on any error.
func mustMirror(t *testing.T, src, dst, dataDir string, opts Options) Summary {
	t.Helper()
	res := mirrorOnce(t, src, dst, dataDir, opts, nil)
	if res.serr != nil || res.rerr != nil {
		t.Fatalf("mirror: sender %v, receiver %v", res.serr, res.rerr)
	}
	return res.sum
}

// mustIdentical fails unless Compare finds no difference.
func mustIdentical(t *testing.T, src, dst string, opts Options) {
	t.Helper()
	ctx := context.Background()
	a, err := Manifest(ctx, src, opts, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Manifest(ctx, dst, opts, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(a, b); len(d) > 0 {
		for i, x := range d {
			if i > 20 {
				break
			}
			t.Errorf("difference: %q %v %s", x.Path, x.Kinds, x.Detail)
		}
		t.FailNow()
	}
}

func mirrorOnceB(b *testing.B, src, dst, dataDir string, opts Options) result {
	return mirrorOnce(b, src, dst, dataDir, opts, nil)
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}
