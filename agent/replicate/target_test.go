package replicate_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// serveTarget runs ServeTarget on one end of a pipe and returns the other.
func serveTarget(t *testing.T, root string) (*wire.Conn, <-chan error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- replicate.ServeTarget(context.Background(), wire.NewConn(a),
			replicate.TargetConfig{Root: root, DataDir: t.TempDir(), JobID: "safety", Log: quietLog()})
	}()
	c := wire.NewConn(b)
	t.Cleanup(func() { c.Close() })
	if _, err := wire.Expect[*wire.SyncAccepted](c); err != nil {
		t.Fatal(err)
	}
	return c, done
}

// TestTargetRefusesEscapes sends ops a hostile source might: paths with
// "..", absolute paths and paths through a symlink planted in the target
// tree. Each is refused with a bad-path error and nothing is created,
// written or removed outside the root.
func TestTargetRefusesEscapes(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep me"), 0o644)
	file := fsys.Entry{Type: fsys.TypeFile, Mode: 0o644, Size: 4}
	cases := []struct {
		name string
		op   wire.SyncOp
	}{
		{"dotdot put", wire.SyncOp{Op: wire.SyncOpPut, Path: "../escape", Entry: file, Content: true}},
		{"absolute put", wire.SyncOp{Op: wire.SyncOpPut, Path: victim, Entry: file, Content: true}},
		{"through symlink", wire.SyncOp{Op: wire.SyncOpPut, Path: "link/escape", Entry: file, Content: true}},
		{"delete through symlink", wire.SyncOp{Op: wire.SyncOpDelete, Path: "link/victim"}},
		{"rename out", wire.SyncOp{Op: wire.SyncOpRename, From: "inside", Path: "../moved"}},
		{"link to outside", wire.SyncOp{Op: wire.SyncOpLink, Path: "l", LinkTo: "link/victim"}},
		{"prune through symlink", wire.SyncOp{Op: wire.SyncOpPrune, Path: "link"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			os.Symlink(outside, filepath.Join(root, "link"))
			os.WriteFile(filepath.Join(root, "inside"), []byte("x"), 0o644)
			c, done := serveTarget(t, root)
			op := tc.op
			op.Seq, op.Last = 1, true
			go func() { // net.Pipe is synchronous: write while we read
				c.WriteMsg(&op)
				if op.Content {
					c.WriteMsg(&wire.SyncChunk{Off: 0, Data: []byte("evil")})
					c.WriteMsg(&wire.SyncOpEnd{})
				}
				c.Flush()
			}()
			var remote error
			for remote == nil {
				m, err := c.ReadMsg()
				if err != nil {
					t.Fatalf("no error from the target: %v", err)
				}
				if e, ok := m.(*wire.Error); ok {
					remote = e.Err()
				}
			}
			c.Close()
			var got error
			select {
			case got = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("target did not end")
			}
			if got == nil {
				t.Fatal("op accepted")
			}
			if !errors.Is(remote, wire.ErrBadPath) && !errors.Is(remote, wire.ErrNotFound) {
				t.Errorf("wire error %v, want bad path or not found", remote)
			}
			if !errors.Is(got, fsys.ErrEscapes) && !errors.Is(got, fsys.ErrSymlinkInPath) && !errors.Is(got, replicate.ErrNeedFull) {
				t.Errorf("error %v, want a path refusal", got)
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
				t.Errorf("victim changed: %q %v", b, err)
			}
			kids, _ := os.ReadDir(outside)
			if len(kids) != 1 {
				t.Errorf("outside holds %d entries, want only the victim", len(kids))
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(root), "moved")); err == nil {
				t.Error("rename escaped the root")
			}
		})
	}
}
