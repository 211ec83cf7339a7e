package agents

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
)

// entry is what the comparison checks of one path.
type entry struct {
	mode     fs.FileMode
	uid, gid uint32
	size     int64
	mtimeNs  int64 // regular files and symlinks
	sum      string
	link     string
}

// snapshot walks root without following symlinks: type, permissions,
// owner, size, nanosecond mtime and a SHA-256 of every regular file.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.size, e.sum, e.mtimeNs = fi.Size(), hex.EncodeToString(h.Sum(nil)), fi.ModTime().UnixNano()
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if rel == "." {
			e.mode = fi.Mode().Type() // the roots' own modes may differ
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// differences lists how dst differs from src.
func differences(t *testing.T, src, dst string) []string {
	t.Helper()
	a, b := snapshot(t, src), snapshot(t, dst)
	var out []string
	for p, ea := range a {
		eb, ok := b[p]
		switch {
		case !ok:
			out = append(out, "missing "+p)
		case ea != eb:
			out = append(out, fmt.Sprintf("differs %s: %+v vs %+v", p, ea, eb))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "extra "+p)
		}
	}
	sort.Strings(out)
	return out
}

// makeTree writes a small tree of random files, directories and a symlink.
func makeTree(t *testing.T, root string, files int) {
	t.Helper()
	for i := range files {
		p := filepath.Join(root, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%03d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 100+i*997%20000)
		rand.Read(data)
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d0/f000.bin", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
}

// treeBytes is the size of the regular files under root (0 if absent).
func treeBytes(root string) int64 {
	var n int64
	filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
