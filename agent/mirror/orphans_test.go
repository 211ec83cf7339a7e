package mirror

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// TestOrphanWalkUnsortedSender: the orphan walk merges each target
// directory's sorted listing with the names the source announced there;
// a sender that announces names out of order, or a directory's children
// in several runs, must still have exactly its orphans removed.
func TestOrphanWalkUnsortedSender(t *testing.T) {
	dst := t.TempDir()
	for _, p := range []string{"a", "b", "c", "d/x", "d/y", "e/z", ".ferry.c.0123456789abcdef"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fsys.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ck, err := openCheckpoints("", "job")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Orphans: wire.OrphansDelete}
	if err := Normalize(&opts); err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Job: Job{ID: "job", Root: dst, Opts: opts}, Log: slog.Default(), root: root, ckpt: ck,
		seen: map[string]*seenNames{}, skipped: map[string]bool{}}
	r.filter = NewFilter(&r.Job.Opts, dst, "", 0)
	// Out of order, and d's children split around another directory's.
	for _, p := range []string{"", "c", "a", "d", "e", "d/y", "e/z", "d/x"} {
		r.markSeen(p)
	}
	if err := r.orphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "c", "d/x", "d/y", "e/z"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s (announced) was removed: %v", p, err)
		}
	}
	for _, p := range []string{"b", ".ferry.c.0123456789abcdef"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s (orphan or stale temporary) survived: %v", p, err)
		}
	}
	if r.sum.OrphansRemoved != 1 || r.sum.TempsCleaned != 1 {
		t.Errorf("summary %+v, want 1 orphan removed and 1 temporary cleaned", r.sum)
	}
}
