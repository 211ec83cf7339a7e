package fsys_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// TestWriteFileDurable: the file is replaced whole with the mode asked,
// no temporary is left, and a failure leaves the old content.
func TestWriteFileDurable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	if err := os.WriteFile(p, []byte("old content, longer than the new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFileDurable(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q, %v", b, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries in the directory, want only the file", len(ents))
	}
	// A directory where the file should be: the rename fails, nothing changes.
	sub := filepath.Join(dir, "sub")
	os.MkdirAll(filepath.Join(sub, "x"), 0o755)
	if err := fsys.WriteFileDurable(filepath.Join(sub, "x"), []byte("y"), 0o600); err == nil {
		t.Error("replacing a non-empty directory succeeded")
	}
	if ents, _ := os.ReadDir(sub); len(ents) != 1 {
		t.Errorf("%d entries after the failed write, want 1 (no temporary left)", len(ents))
	}
}
