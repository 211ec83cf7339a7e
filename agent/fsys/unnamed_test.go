package fsys_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// TestUnnamedFiles: an unnamed file is invisible until linked, gets its
// content and metadata through the descriptor, links at a free name,
// refuses a taken one (EEXIST) and then links under a temporary name; an
// unnamed file closed without a link leaves nothing behind.
func TestUnnamedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	r, err := fsys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The probe leaves the root as it was, times included.
	if !r.UnnamedWorks() {
		t.Skip("needs a file system with O_TMPFILE and a way to link by descriptor")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("root mtime after the probe: %v (%v), want %v", fi.ModTime(), err, old)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("root holds %v after the probe, want only d", ents)
	}
	f, err := r.CreateUnnamed("d", 0o640)
	if errors.Is(err, fsys.ErrUnnamedUnsupported) {
		t.Skipf("needs a file system with O_TMPFILE: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("content"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "d")); len(ents) != 0 {
		t.Fatalf("an unnamed file shows in its directory: %v", ents)
	}
	if err := unix.Fchmod(int(f.Fd()), 0o4750); err != nil {
		t.Fatal(err)
	}
	if err := r.LinkUnnamed(f, "d/file"); err != nil {
		t.Fatal(err)
	}
	// A second name is refused: the caller installs over it instead.
	if err := r.LinkUnnamed(f, "d/file"); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("linking over an existing name = %v, want EEXIST", err)
	}
	tmp, err := r.LinkUnnamedTemp(f, "d", "file")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tmp, "d/.ferry.file.") {
		t.Errorf("temporary name %q, want d/.ferry.file.*", tmp)
	}
	f.Close()
	b, err := os.ReadFile(filepath.Join(dir, "d/file"))
	if err != nil || string(b) != "content" {
		t.Fatalf("linked file: %q, %v", b, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "d/file"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o750 {
		t.Fatalf("linked file mode %v (%v), want setuid 0750", fi.Mode(), err)
	}

	// Closed without a link: nothing in the directory.
	g, err := r.CreateUnnamed("", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString("never named")
	g.Close()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "d" {
		t.Errorf("root holds %v after an unlinked unnamed file, want only d", ents)
	}

	// Paths stay inside the root.
	if _, err := r.CreateUnnamed("../", 0o600); err == nil {
		t.Error("CreateUnnamed outside the root succeeded")
	}
	h, err := r.CreateUnnamed("", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := r.LinkUnnamed(h, "../escape"); err == nil {
		t.Error("LinkUnnamed outside the root succeeded")
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Error("a file was linked outside the root")
	}
}
