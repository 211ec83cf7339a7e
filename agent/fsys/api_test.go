package fsys_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

func openTestRoot(t *testing.T) (*fsys.Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := fsys.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func TestReadDirSortedWithTypes(t *testing.T) {
	r, dir := openTestRoot(t)
	names := map[string]fsys.Type{"b": fsys.TypeFile, "a": fsys.TypeDir, "\xff": fsys.TypeSymlink, "Z": fsys.TypeFIFO, "new\nline": fsys.TypeFile}
	for n, typ := range names {
		p := filepath.Join(dir, n)
		var err error
		switch typ {
		case fsys.TypeFile:
			err = os.WriteFile(p, nil, 0o644)
		case fsys.TypeDir:
			err = os.Mkdir(p, 0o755)
		case fsys.TypeSymlink:
			err = os.Symlink("nowhere", p)
		case fsys.TypeFIFO:
			err = unix.Mkfifo(p, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.OpenDir("")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for range 2 { // the second call must rewind
		got, err := fsys.ReadDir(int(d.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		var gotNames []string
		for _, e := range got {
			gotNames = append(gotNames, e.Path)
			if e.Type != names[e.Path] || e.Ino == 0 {
				t.Errorf("%q: type %v ino %d, want %v", e.Path, e.Type, e.Ino, names[e.Path])
			}
		}
		want := []string{"Z", "a", "b", "new\nline", "\xff"}
		if !slices.Equal(gotNames, want) {
			t.Errorf("ReadDir names %q, want %q", gotNames, want)
		}
	}
}

func TestReadDirLarge(t *testing.T) {
	r, dir := openTestRoot(t)
	const n = 800 // ~110 KB of dirents: several 32 KiB getdents buffers
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, strings.Repeat("x", 100)+string(rune('a'+i%26))+strings.Repeat("0", i%7)+"-"+strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.OpenDir("")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := fsys.ReadDir(int(d.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || !slices.IsSortedFunc(got, func(a, b fsys.Entry) int { return strings.Compare(a.Path, b.Path) }) {
		t.Errorf("ReadDir returned %d entries (want %d), sorted=%v", len(got), n,
			slices.IsSortedFunc(got, func(a, b fsys.Entry) int { return strings.Compare(a.Path, b.Path) }))
	}
}

func TestDataExtentsAndPunch(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := fsys.DataExtents(f, 0); err != nil || len(got) != 0 {
		t.Errorf("empty file extents %v, %v", got, err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if got, err := fsys.DataExtents(f, 1<<20); err != nil || len(got) != 0 {
		t.Errorf("all-hole file extents %v, %v", got, err)
	}
	block := []byte(strings.Repeat("d", 8192))
	f.WriteAt(block, 64<<10)
	f.WriteAt(block, 512<<10)
	got, err := fsys.DataExtents(f, 1<<20)
	want := []fsys.Extent{{Off: 64 << 10, Len: 8192}, {Off: 512 << 10, Len: 8192}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("extents %v, %v; want %v", got, err, want)
	}
	// Only the first half of the file is asked for.
	if got, _ := fsys.DataExtents(f, 256<<10); !slices.Equal(got, want[:1]) {
		t.Errorf("extents of a prefix %v", got)
	}
	if err := fsys.PunchHole(f, 512<<10, 8192); err != nil {
		t.Fatal(err)
	}
	if got, _ := fsys.DataExtents(f, 1<<20); !slices.Equal(got, want[:1]) {
		t.Errorf("extents after PunchHole %v", got)
	}
	buf := make([]byte, 8192)
	if _, err := f.ReadAt(buf, 512<<10); err != nil || strings.Trim(string(buf), "\x00") != "" {
		t.Errorf("punched range is not zero: %v", err)
	}
}

func TestCompareMetaKinds(t *testing.T) {
	base := fsys.Entry{Type: fsys.TypeFile, Mode: 0o644, Uid: 1, Gid: 2, Size: 10, MtimeNs: 5, AtimeNs: 6,
		Xattrs: []fsys.Xattr{{Name: "system.posix_acl_access", Value: []byte{1}}, {Name: "user.a", Value: []byte("x")}},
		Dev:    1, Ino: 2, Nlink: 1}
	if d := fsys.CompareMeta(base, base); d != nil {
		t.Errorf("identical entries differ: %v", d)
	}
	mod := func(f func(*fsys.Entry)) fsys.Entry {
		e := base
		e.Xattrs = slices.Clone(base.Xattrs)
		f(&e)
		return e
	}
	for _, tc := range []struct {
		dst  fsys.Entry
		want []fsys.DiffKind
	}{
		{mod(func(e *fsys.Entry) { e.AtimeNs, e.Dev, e.Ino, e.Nlink, e.Path = 9, 9, 9, 9, "other" }), nil},
		{mod(func(e *fsys.Entry) { e.Type = fsys.TypeDir; e.Mode = 0 }), []fsys.DiffKind{fsys.DiffType}},
		{mod(func(e *fsys.Entry) { e.Size = 11 }), []fsys.DiffKind{fsys.DiffSize}},
		{mod(func(e *fsys.Entry) { e.Mode = 0o4644 }), []fsys.DiffKind{fsys.DiffMode}},
		{mod(func(e *fsys.Entry) { e.Gid = 3 }), []fsys.DiffKind{fsys.DiffOwner}},
		{mod(func(e *fsys.Entry) { e.MtimeNs = 4 }), []fsys.DiffKind{fsys.DiffMtime}},
		{mod(func(e *fsys.Entry) { e.Xattrs[1].Value = []byte("y") }), []fsys.DiffKind{fsys.DiffXattrs}},
		{mod(func(e *fsys.Entry) { e.Xattrs = e.Xattrs[1:] }), []fsys.DiffKind{fsys.DiffACL}},
		{mod(func(e *fsys.Entry) { e.Xattrs = e.Xattrs[:1] }), []fsys.DiffKind{fsys.DiffXattrs}},
		{mod(func(e *fsys.Entry) { e.Mode, e.MtimeNs, e.Xattrs = 0o600, 1, nil }), []fsys.DiffKind{fsys.DiffMode, fsys.DiffMtime, fsys.DiffXattrs, fsys.DiffACL}},
	} {
		if got := fsys.CompareMeta(base, tc.dst); !slices.Equal(got, tc.want) {
			t.Errorf("CompareMeta(%+v) = %v, want %v", tc.dst, got, tc.want)
		}
	}
	l1 := fsys.Entry{Type: fsys.TypeSymlink, Mode: 0o777, Target: "a", Size: 1}
	l2 := fsys.Entry{Type: fsys.TypeSymlink, Mode: 0o755, Target: "b", Size: 1}
	if got := fsys.CompareMeta(l1, l2); !slices.Equal(got, []fsys.DiffKind{fsys.DiffTarget}) {
		t.Errorf("symlinks: %v, want only target (mode is not compared)", got)
	}
	d1 := fsys.Entry{Type: fsys.TypeDir, Size: 4096, MtimeNs: 1}
	d2 := fsys.Entry{Type: fsys.TypeDir, Size: 12288, MtimeNs: 2}
	if got := fsys.CompareMeta(d1, d2); !slices.Equal(got, []fsys.DiffKind{fsys.DiffMtime}) {
		t.Errorf("dirs: %v, want only mtime (size is not compared)", got)
	}
	c1 := fsys.Entry{Type: fsys.TypeChar, Rdev: unix.Mkdev(1, 3)}
	c2 := fsys.Entry{Type: fsys.TypeChar, Rdev: unix.Mkdev(1, 5)}
	if got := fsys.CompareMeta(c1, c2); !slices.Equal(got, []fsys.DiffKind{fsys.DiffRdev}) {
		t.Errorf("char devices: %v", got)
	}
}

// TestApplyMetaRemovesExtras: a file created under a directory with a
// default ACL inherits an access ACL; ApplyMeta with an entry without ACL
// or xattrs must remove them, and an extra user xattr too.
func TestApplyMetaRemovesExtras(t *testing.T) {
	requireRoot(t)
	r, dir := openTestRoot(t)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("setfacl", "-d", "-m", "u:1001:rwx", filepath.Join(dir, "d")).CombinedOutput(); err != nil {
		t.Skipf("needs POSIX ACLs on the temp dir: %s", out)
	}
	f, tmp, err := r.CreateTemp("d", "file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fsetxattr(int(f.Fd()), "user.stale", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	before, err := r.Lstat(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before.Xattr("system.posix_acl_access"); !ok {
		t.Fatalf("expected an inherited ACL on %q, got %+v", tmp, before.Xattrs)
	}
	want := fsys.Entry{Type: fsys.TypeFile, Mode: 0o640, Uid: 7, Gid: 8, MtimeNs: 42, AtimeNs: 43}
	if err := r.ApplyMeta(tmp, want); err != nil {
		t.Fatal(err)
	}
	got, err := r.Lstat(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if d := fsys.CompareMeta(want, got); d != nil || len(got.Xattrs) != 0 || got.AtimeNs != 43 {
		t.Errorf("after ApplyMeta: %v, xattrs %+v, atime %d", d, got.Xattrs, got.AtimeNs)
	}
	// The same through the fd, with attributes to add back.
	want.Xattrs = []fsys.Xattr{{Name: "user.k", Value: []byte("v")}}
	want.Mode = 0o2750
	if err := fsys.ApplyMetaFD(f, want); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Lstat(tmp); fsys.CompareMeta(want, got) != nil {
		t.Errorf("after ApplyMetaFD: %v", fsys.CompareMeta(want, got))
	}
	if err := fsys.ApplyMetaFD(f, fsys.Entry{Type: fsys.TypeDir}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("ApplyMetaFD with the wrong type = %v, want EINVAL", err)
	}
}

func TestRootOperations(t *testing.T) {
	r, dir := openTestRoot(t)
	old := unix.Umask(0o077)
	defer unix.Umask(old)

	// CreateTemp: hidden, derived from base, 0600, unique.
	f, tmp, err := r.CreateTemp("", "report.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello")
	f.Close()
	if !strings.HasPrefix(tmp, ".ferry.report.txt.") {
		t.Errorf("temp name %q", tmp)
	}
	if e, _ := r.Lstat(tmp); e.Mode != 0o600 || e.Type != fsys.TypeFile {
		t.Errorf("temp entry %+v", e)
	}
	_, tmp2, err := r.CreateTemp("", strings.Repeat("L", 255))
	if err != nil || len(tmp2) > 255 {
		t.Errorf("CreateTemp with a 255-byte base: %q, %v", tmp2, err)
	}

	// OpenFile resumes a temp file in place.
	g, err := r.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteAt([]byte(" world"), 5)
	g.Close()

	// Rename replaces, Exchange swaps.
	os.WriteFile(filepath.Join(dir, "final"), []byte("old"), 0o644)
	if err := r.Rename(tmp, "final"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "final")); string(b) != "hello world" {
		t.Errorf("after Rename: %q", b)
	}
	os.WriteFile(filepath.Join(dir, "other"), []byte("other"), 0o644)
	if err := r.Exchange("final", "other"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "final")); string(b) != "other" {
		t.Errorf("after Exchange: %q", b)
	}
	if err := r.Exchange("final", "missing"); err == nil || errors.Is(err, fsys.ErrExchangeUnsupported) {
		t.Errorf("Exchange with a missing name = %v, want ENOENT", err)
	}

	// Mkdir: existing dir fine, existing file EEXIST; MkdirAll.
	if err := r.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.Mkdir("d", 0o755); err != nil {
		t.Errorf("Mkdir of an existing dir: %v", err)
	}
	if err := r.Mkdir("final", 0o755); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir over a file = %v, want EEXIST", err)
	}
	if err := r.MkdirAll("d/e/f/g"); err != nil {
		t.Fatal(err)
	}
	if err := r.MkdirAll("final/x"); err == nil {
		t.Error("MkdirAll through a file succeeded")
	}

	// Open refuses a FIFO without blocking, and directories.
	unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
	if _, err := r.Open("fifo"); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Open(fifo) = %v, want EINVAL", err)
	}
	if _, err := r.Open("d"); err == nil {
		t.Error("Open(dir) succeeded")
	}
	if _, err := r.Open("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}

	// Sub is confined to its directory.
	s, err := r.Sub("d/e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lstat("../../final"); !errors.Is(err, fsys.ErrEscapes) {
		t.Errorf("Sub escape = %v", err)
	}
	if err := s.Mkdir("h", 0o700); err != nil {
		t.Error(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "d/e/h")); err != nil {
		t.Errorf("Sub.Mkdir: %v", err)
	}

	// Remove: file, empty dir; not a non-empty dir; not the root.
	if err := r.Remove("final"); err != nil {
		t.Error(err)
	}
	if err := r.Remove("d/e/f/g"); err != nil {
		t.Error(err)
	}
	if err := r.Remove("d"); !errors.Is(err, unix.ENOTEMPTY) {
		t.Errorf("Remove of a non-empty dir = %v", err)
	}
	if err := r.Remove(""); err == nil {
		t.Error("Remove of the root succeeded")
	}

	// RemoveAll through read-only directories; a missing path is fine.
	// (Only root may remove entries of a read-only directory.)
	if os.Geteuid() == 0 {
		os.WriteFile(filepath.Join(dir, "d/e/f/file"), []byte("x"), 0o400)
		os.Chmod(filepath.Join(dir, "d/e/f"), 0o500)
		os.Chmod(filepath.Join(dir, "d/e"), 0o500)
		if err := r.RemoveAll("d"); err != nil {
			t.Errorf("RemoveAll: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "d")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("d survived RemoveAll: %v", err)
		}
	}
	if err := r.RemoveAll("never/was"); err != nil {
		t.Errorf("RemoveAll of a missing path: %v", err)
	}
}
