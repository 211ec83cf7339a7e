package mirror

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// snapshot lists every path under dir with its content (files) or link
// target (symlinks), to prove nothing outside a root changed.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		s := p + " " + fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			s += " " + string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			s += " -> " + l
		}
		out = append(out, s)
		return nil
	})
	sort.Strings(out)
	return out
}

// hostile plays a malicious source: it sends scripted messages to a real
// Receiver and answers whatever the receiver asks with the given content.
type hostile struct {
	t       *testing.T
	conn    *wire.Conn
	batches [][]wire.FileEntry
	content map[uint64][]byte
	// between runs after each batch is sent and answered (the test swaps
	// things on the target's disk there).
	between func(i int)
}

func (h *hostile) run() {
	c := h.conn
	needs := make(chan wire.Need, 1024)
	go func() {
		defer close(needs)
		for {
			m, err := c.ReadMsg()
			if err != nil {
				return
			}
			if nb, ok := m.(*wire.NeedBatch); ok {
				for _, n := range nb.Items {
					needs <- n
				}
				if nb.End {
					return
				}
			} else {
				return
			}
		}
	}()
	for i, b := range h.batches {
		if c.Send(&wire.EntryBatch{Entries: b}) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // let the receiver act on it
		if h.between != nil {
			h.between(i)
		}
	}
	c.Send(&wire.ScanEnd{})
	for n := range needs {
		if n.Action == wire.NeedSkip {
			continue
		}
		data := h.content[n.ID]
		if len(data) > 0 {
			c.WriteData(context.Background(), n.ID, 0, data)
		}
		c.WriteMsg(&wire.FileEnd{ID: n.ID, Status: wire.FileOK, Size: int64(len(data))})
	}
	c.Send(&wire.SendEnd{})
}

func file(id uint64, path string, size int64) wire.FileEntry {
	return wire.FileEntry{ID: id, Entry: fsys.Entry{Path: path, Type: fsys.TypeFile, Mode: 0o644, Size: size, MtimeNs: 1e18}}
}

func dir(id uint64, path string) wire.FileEntry {
	return wire.FileEntry{ID: id, Entry: fsys.Entry{Path: path, Type: fsys.TypeDir, Mode: 0o755, MtimeNs: 1e18}}
}

func symlink(id uint64, path, target string) wire.FileEntry {
	return wire.FileEntry{ID: id, Entry: fsys.Entry{Path: path, Type: fsys.TypeSymlink, Mode: 0o777, Target: target, MtimeNs: 1e18}}
}

func TestMaliciousSenderCannotEscapeRoot(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(outside, "sub"), 0o755)
	os.WriteFile(filepath.Join(outside, "canary"), []byte("original"), 0o644)
	os.WriteFile(filepath.Join(outside, "sub", "canary2"), []byte("original"), 0o644)
	evil := []byte("EVIL")
	root := func(i int) wire.FileEntry { return dir(uint64(1000+i), "") }

	cases := []struct {
		name    string
		opts    Options
		batches [][]wire.FileEntry
		content map[uint64][]byte
		between func(dst string) func(int)
		prepare func(dst string)
		wantBad bool // the receiver must refuse with ErrBadPath
	}{
		{name: "dotdot", batches: [][]wire.FileEntry{{root(0), file(1, "../outside/canary", 4)}},
			content: map[uint64][]byte{1: evil}, wantBad: true},
		{name: "dotdot inside", batches: [][]wire.FileEntry{{root(0), dir(2, "a"), file(1, "a/../../outside/canary", 4)}},
			content: map[uint64][]byte{1: evil}, wantBad: true},
		{name: "absolute", batches: [][]wire.FileEntry{{root(0), file(1, filepath.Join(outside, "canary"), 4)}},
			content: map[uint64][]byte{1: evil}, wantBad: true},
		{name: "absolute dir", batches: [][]wire.FileEntry{{root(0), dir(1, outside+"/new")}}, wantBad: true},
		{name: "hardlink to outside", batches: [][]wire.FileEntry{{root(0), {ID: 1, Entry: fsys.Entry{Path: "l", Type: fsys.TypeFile}, LinkTo: "../outside/canary"}}},
			wantBad: true},
		{name: "symlink then write through it", batches: [][]wire.FileEntry{
			{root(0), symlink(1, "d", outside), file(2, "d/canary", 4), symlink(3, "e", "../outside"), file(4, "e/sub/canary2", 4)}},
			content: map[uint64][]byte{2: evil, 4: evil}},
		{name: "directory replaced by symlink in a later batch", batches: [][]wire.FileEntry{
			{root(0), dir(1, "d")}, {symlink(2, "d", outside)}, {file(3, "d/canary", 4), dir(4, "d/sub"), file(5, "d/sub/canary2", 4)}},
			content: map[uint64][]byte{3: evil, 5: evil}},
		{name: "directory swapped for a symlink on disk mid-transfer", batches: [][]wire.FileEntry{
			{root(0), dir(1, "d"), dir(2, "d/sub")}, {file(3, "d/canary", 4), file(4, "d/sub/canary2", 4)}},
			content: map[uint64][]byte{3: evil, 4: evil},
			between: func(dst string) func(int) {
				return func(i int) {
					if i == 0 {
						os.RemoveAll(filepath.Join(dst, "d"))
						os.Symlink(outside, filepath.Join(dst, "d"))
					}
				}
			}},
		{name: "orphan symlink deleted, not followed", opts: Options{Orphans: wire.OrphansDelete},
			batches: [][]wire.FileEntry{{root(0)}},
			prepare: func(dst string) { os.Symlink(outside, filepath.Join(dst, "orphan-link")) }},
		{name: "orphans moved, symlinks not followed", opts: Options{Orphans: wire.OrphansMove, OrphanDir: "moved"},
			batches: [][]wire.FileEntry{{root(0), symlink(1, "moved", outside)}},
			prepare: func(dst string) { os.WriteFile(filepath.Join(dst, "orphan"), []byte("o"), 0o644) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, outside)
			dst := filepath.Join(t.TempDir(), "dst")
			os.MkdirAll(dst, 0o755)
			if tc.prepare != nil {
				tc.prepare(dst)
			}
			sc, rc := pair(t)
			r := &Receiver{Job: Job{ID: "evil", Root: dst, Opts: tc.opts}, Conn: rc, DataDir: t.TempDir(), Log: quiet()}
			h := &hostile{t: t, conn: sc, batches: tc.batches, content: tc.content}
			if tc.between != nil {
				h.between = tc.between(dst)
			}
			go h.run()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := r.Run(ctx)
			if tc.wantBad && !errors.Is(err, wire.ErrBadPath) {
				t.Errorf("receiver err = %v, want ErrBadPath", err)
			}
			after := snapshot(t, outside)
			if len(before) != len(after) {
				t.Fatalf("outside changed:\nbefore %q\nafter  %q", before, after)
			}
			for i := range before {
				if before[i] != after[i] {
					t.Fatalf("outside changed:\nbefore %q\nafter  %q", before, after)
				}
			}
		})
	}
}

func TestMaliciousFrames(t *testing.T) {
	dst := t.TempDir()
	for _, tc := range []struct {
		name string
		send func(c *wire.Conn)
	}{
		{"data for a file never asked for", func(c *wire.Conn) {
			c.Send(&wire.EntryBatch{Entries: []wire.FileEntry{dir(1, "")}})
			c.WriteData(context.Background(), 77, 0, []byte("x"))
			c.Flush()
		}},
		{"data beyond the announced size", func(c *wire.Conn) {
			c.Send(&wire.EntryBatch{Entries: []wire.FileEntry{dir(1, ""), file(2, "f", 4)}})
			time.Sleep(50 * time.Millisecond)
			c.WriteData(context.Background(), 2, 1<<30, []byte("far away"))
			c.Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, rc := pair(t)
			r := &Receiver{Job: Job{ID: "evil", Root: dst}, Conn: rc, Log: quiet()}
			go func() {
				tc.send(sc)
				for {
					if _, err := sc.ReadMsg(); err != nil {
						return
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := r.Run(ctx); !errors.Is(err, wire.ErrProtocol) {
				t.Errorf("err = %v, want ErrProtocol", err)
			}
			if st, err := os.Stat(filepath.Join(dst, "f")); err == nil && st.Size() > 4 {
				t.Errorf("file grew to %d bytes", st.Size())
			}
		})
	}
}
