package fsys_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

func TestCleanRel(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want error
	}{
		{"", nil},
		{"a", nil},
		{"a/b/c", nil},
		{"with space/new\nline/\xff\xfe", nil},
		{".hidden/..x/x..", nil},
		{strings.Repeat("n", 255), nil},
		{"/etc/passwd", fsys.ErrEscapes},
		{"/", fsys.ErrEscapes},
		{"..", fsys.ErrEscapes},
		{"../x", fsys.ErrEscapes},
		{"a/../../x", fsys.ErrEscapes},
		{"a/..", fsys.ErrEscapes},
		{"a\x00b", fsys.ErrInvalidPath},
		{"a//b", fsys.ErrInvalidPath},
		{"a/", fsys.ErrInvalidPath},
		{"./a", fsys.ErrInvalidPath},
		{"a/./b", fsys.ErrInvalidPath},
		{strings.Repeat("n", 256), fsys.ErrInvalidPath},
	} {
		got, err := fsys.CleanRel(tc.rel)
		if tc.want == nil {
			if err != nil || got != tc.rel {
				t.Errorf("CleanRel(%q) = %q, %v; want it unchanged", tc.rel, got, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("CleanRel(%q) error %v, want %v", tc.rel, err, tc.want)
		}
	}
}

// safetyFixture is a root with hostile symlinks next to an outside
// directory holding canaries.
type safetyFixture struct {
	base, rootDir, outside string
	root                   *fsys.Root
}

func newSafetyFixture(t *testing.T) *safetyFixture {
	t.Helper()
	base := t.TempDir()
	f := &safetyFixture{base: base, rootDir: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{f.outside, f.outside + "/sub", f.rootDir, f.rootDir + "/dir", f.rootDir + "/inside", f.rootDir + "/swap"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, data := range map[string]string{
		f.outside + "/canary":      "keep",
		f.outside + "/sub/canary":  "keep too",
		f.outside + "/victim":      "outside victim",
		f.rootDir + "/dir/file":    "inside file",
		f.rootDir + "/inside/x":    "inside x",
		f.rootDir + "/swap/f":      "swap f",
		f.rootDir + "/swap/victim": "inside victim",
	} {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"out":        "../outside",
		"outabs":     f.outside,
		"in":         "inside",
		"canarylink": "../outside/canary",
		"dir/out":    "../../outside",
	} {
		if err := os.Symlink(target, filepath.Join(f.rootDir, link)); err != nil {
			t.Fatal(err)
		}
	}
	// Fixed times on the outside directories: creating or removing anything
	// in them would change their mtime, which the snapshot compares.
	for _, d := range []string{f.outside + "/sub", f.outside} {
		if err := os.Chtimes(d, time.Unix(1e9, 1), time.Unix(1e9, 1)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := fsys.OpenRoot(f.rootDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	f.root = r
	return f
}

// snapshot describes everything under dir that an escape could change:
// names, types, modes, owners, sizes, mtimes, nlink, content, xattrs.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%q mode=%o uid=%d gid=%d size=%d mtime=%d nlink=%d", p, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Nano(), st.Nlink)
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " data=%q", data)
		}
		buf := make([]byte, 4096)
		n, _ := unix.Llistxattr(p, buf)
		fmt.Fprintf(&b, " xattrs=%q\n", buf[:n])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// hostile lists paths that must be refused by every operation, with the
// sentinel the error must wrap.
func (f *safetyFixture) hostile() map[string]error {
	return map[string]error{
		"../outside/canary":        fsys.ErrEscapes,
		"../outside/new":           fsys.ErrEscapes,
		"dir/../../outside/canary": fsys.ErrEscapes,
		f.outside + "/canary":      fsys.ErrEscapes,
		f.outside + "/new":         fsys.ErrEscapes,
		"out/canary":               fsys.ErrSymlinkInPath,
		"out/new":                  fsys.ErrSymlinkInPath,
		"out/sub/canary":           fsys.ErrSymlinkInPath,
		"outabs/canary":            fsys.ErrSymlinkInPath,
		"outabs/new":               fsys.ErrSymlinkInPath,
		"dir/out/canary":           fsys.ErrSymlinkInPath,
		"dir/out/new":              fsys.ErrSymlinkInPath,
		"in/x":                     fsys.ErrSymlinkInPath, // a symlink that stays inside is refused too
		"in/new":                   fsys.ErrSymlinkInPath,
		"canarylink/x":             fsys.ErrSymlinkInPath,
		"dir/file\x00../x":         fsys.ErrInvalidPath,
	}
}

// op is one Root operation applied to a hostile path.
type op struct {
	name string
	do   func(r *fsys.Root, rel string) error
}

func allOps() []op {
	me := fsys.Entry{Type: fsys.TypeFile, Mode: 0o6777, Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), MtimeNs: 1,
		Xattrs: []fsys.Xattr{{Name: "user.evil", Value: []byte("1")}}}
	closeErr := func(f *os.File, err error) error {
		if f != nil {
			f.Close()
		}
		return err
	}
	return []op{
		{"Lstat", func(r *fsys.Root, p string) error { _, err := r.Lstat(p); return err }},
		{"Open", func(r *fsys.Root, p string) error { return closeErr(r.Open(p)) }},
		{"OpenFile", func(r *fsys.Root, p string) error {
			return closeErr(r.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666))
		}},
		{"OpenDir", func(r *fsys.Root, p string) error { return closeErr(r.OpenDir(p)) }},
		{"CreateTemp", func(r *fsys.Root, p string) error { f, _, err := r.CreateTemp(p, "x"); return closeErr(f, err) }},
		{"CreateTempParent", func(r *fsys.Root, p string) error {
			dir, _ := splitRel(p)
			if dir == "" {
				dir = p
			}
			f, _, err := r.CreateTemp(dir, "x")
			return closeErr(f, err)
		}},
		{"CreateTempPerm", func(r *fsys.Root, p string) error {
			f, _, err := r.CreateTempPerm(p, "x", 0o777)
			return closeErr(f, err)
		}},
		{"ReadRegular", func(r *fsys.Root, p string) error { _, _, err := r.ReadRegular(p, make([]byte, 64)); return err }},
		{"RenameTo", func(r *fsys.Root, p string) error { return r.Rename("dir/file", p) }},
		{"RenameFrom", func(r *fsys.Root, p string) error { return r.Rename(p, "dir/moved") }},
		{"ExchangeA", func(r *fsys.Root, p string) error { return r.Exchange("dir/file", p) }},
		{"ExchangeB", func(r *fsys.Root, p string) error { return r.Exchange(p, "dir/file") }},
		{"Mkdir", func(r *fsys.Root, p string) error { return r.Mkdir(p, 0o777) }},
		{"MkdirAll", func(r *fsys.Root, p string) error { return r.MkdirAll(p + "/deeper") }},
		{"Symlink", func(r *fsys.Root, p string) error { return r.Symlink("/etc/passwd", p) }},
		{"LinkTo", func(r *fsys.Root, p string) error { return r.Link("dir/file", p) }},
		{"LinkFrom", func(r *fsys.Root, p string) error { return r.Link(p, "dir/linked") }},
		{"Mknod", func(r *fsys.Root, p string) error {
			return r.Mknod(p, fsys.Entry{Type: fsys.TypeFIFO, Mode: 0o666})
		}},
		{"Remove", func(r *fsys.Root, p string) error { return r.Remove(p) }},
		{"RemoveAll", func(r *fsys.Root, p string) error { return r.RemoveAll(p) }},
		{"ApplyMeta", func(r *fsys.Root, p string) error { return r.ApplyMeta(p, me) }},
		{"Sub", func(r *fsys.Root, p string) error {
			s, err := r.Sub(p)
			if s != nil {
				s.Close()
			}
			return err
		}},
	}
}

func TestSafetyHostilePaths(t *testing.T) {
	f := newSafetyFixture(t)
	before := snapshot(t, f.outside)
	for _, o := range allOps() {
		for rel, want := range f.hostile() {
			err := o.do(f.root, rel)
			if err == nil {
				t.Errorf("%s(%q) succeeded", o.name, rel)
				continue
			}
			if !errors.Is(err, want) {
				t.Errorf("%s(%q) = %v, want an error wrapping %v", o.name, rel, err, want)
			}
		}
	}
	if after := snapshot(t, f.outside); after != before {
		t.Errorf("outside directory changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	if data, err := os.ReadFile(filepath.Join(f.rootDir, "dir/file")); err != nil || string(data) != "inside file" {
		t.Errorf("dir/file after the refused operations: %q, %v", data, err)
	}
}

// TestSafetyFinalSymlink checks that a symlink as the final component is
// acted on as a symlink or refused, never followed.
func TestSafetyFinalSymlink(t *testing.T) {
	f := newSafetyFixture(t)
	before := snapshot(t, f.outside)
	r := f.root
	refused := map[string]error{}
	_, err := r.Open("canarylink")
	refused["Open(canarylink)"] = err
	_, err = r.OpenFile("canarylink", os.O_RDWR|os.O_TRUNC, 0)
	refused["OpenFile(canarylink, O_TRUNC)"] = err
	_, err = r.OpenFile("canarylink", os.O_WRONLY|os.O_CREATE, 0o644)
	refused["OpenFile(canarylink, O_CREAT)"] = err
	_, err = r.OpenDir("out")
	refused["OpenDir(out)"] = err
	refused["Mkdir(out)"] = r.Mkdir("out", 0o755)
	refused["MkdirAll(out/x)"] = r.MkdirAll("out/x")
	refused["Symlink over out"] = r.Symlink("x", "out")
	refused["Mknod over canarylink"] = r.Mknod("canarylink", fsys.Entry{Type: fsys.TypeFIFO, Mode: 0o644})
	refused["ApplyMeta(canarylink as file)"] = r.ApplyMeta("canarylink", fsys.Entry{Type: fsys.TypeFile, Mode: 0o777})
	_, _, err = r.CreateTemp("out", "x")
	refused["CreateTemp(out)"] = err
	_, _, err = r.ReadRegular("canarylink", make([]byte, 64))
	refused["ReadRegular(canarylink)"] = err
	for what, err := range refused {
		if err == nil {
			t.Errorf("%s succeeded", what)
		}
	}

	// Acting on the symlink itself is allowed and must not touch its target.
	me := uint32(os.Getuid())
	if err := r.ApplyMeta("canarylink", fsys.Entry{Type: fsys.TypeSymlink, Uid: me, Gid: me, MtimeNs: 123_456_789, AtimeNs: 1}); err != nil {
		t.Errorf("ApplyMeta on the symlink itself: %v", err)
	}
	if e, err := r.Lstat("canarylink"); err != nil || e.Type != fsys.TypeSymlink || e.MtimeNs != 123_456_789 || e.Target != "../outside/canary" {
		t.Errorf("Lstat(canarylink) = %+v, %v", e, err)
	}
	if err := r.Link("canarylink", "link-of-link"); err != nil {
		t.Errorf("Link of a symlink: %v", err)
	}
	if e, err := r.Lstat("link-of-link"); err != nil || e.Type != fsys.TypeSymlink || e.Nlink != 2 {
		t.Errorf("hardlink of a symlink = %+v, %v", e, err)
	}
	if err := r.Rename("canarylink", "moved-link"); err != nil {
		t.Errorf("Rename of a symlink: %v", err)
	}
	if err := r.Remove("out"); err != nil {
		t.Errorf("Remove(out): %v", err)
	}
	if err := r.RemoveAll("outabs"); err != nil {
		t.Errorf("RemoveAll(outabs): %v", err)
	}
	if err := r.RemoveAll("dir"); err != nil { // holds dir/out -> ../../outside
		t.Errorf("RemoveAll(dir): %v", err)
	}
	if _, err := os.Lstat(filepath.Join(f.rootDir, "dir")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dir survived RemoveAll: %v", err)
	}
	if err := r.RemoveAll(""); err == nil {
		t.Error("RemoveAll of the root itself succeeded")
	}
	if after := snapshot(t, f.outside); after != before {
		t.Errorf("outside directory changed:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// TestSafetySwappedDirectory replaces a directory by a symlink to the
// outside between two calls.
func TestSafetySwappedDirectory(t *testing.T) {
	f := newSafetyFixture(t)
	r := f.root
	if _, err := r.Lstat("swap/f"); err != nil {
		t.Fatalf("before the swap: %v", err)
	}
	if err := os.Rename(filepath.Join(f.rootDir, "swap"), filepath.Join(f.rootDir, "swap.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(f.rootDir, "swap")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.outside, "f"), []byte("outside f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f.outside, time.Unix(1e9, 1), time.Unix(1e9, 1)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, f.outside)
	for _, o := range allOps() {
		for _, rel := range []string{"swap/f", "swap/new", "swap/sub/canary", "swap/victim"} {
			if err := o.do(r, rel); !errors.Is(err, fsys.ErrSymlinkInPath) {
				t.Errorf("%s(%q) after the swap = %v, want ErrSymlinkInPath", o.name, rel, err)
			}
		}
	}
	if after := snapshot(t, f.outside); after != before {
		t.Errorf("outside directory changed:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// TestSafetySwapRace flips a directory and a symlink to the outside with
// RENAME_EXCHANGE in a loop while writes go through the flipping path.
func TestSafetySwapRace(t *testing.T) {
	f := newSafetyFixture(t)
	r := f.root
	if err := os.Mkdir(filepath.Join(f.rootDir, "flip"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(f.rootDir, "fliplink")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, f.outside)
	var stop atomic.Bool
	done := make(chan int)
	go func() {
		n := 0
		for !stop.Load() {
			if err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(f.rootDir, "flip"), unix.AT_FDCWD, filepath.Join(f.rootDir, "fliplink"), unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("exchange: %v", err)
				break
			}
			n++
		}
		done <- n
	}()
	var ok, refused int
	deadline := time.Now().Add(400 * time.Millisecond)
	for i := 0; time.Now().Before(deadline) && i < 20000; i++ {
		name := fmt.Sprintf("flip/new-%d", i)
		fl, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			fl.Close()
			ok++
		} else {
			refused++
		}
		r.Mkdir("flip/dir", 0o755)
		r.Remove("flip/victim")
		r.Mknod("flip/fifo", fsys.Entry{Type: fsys.TypeFIFO, Mode: 0o600})
		r.ApplyMeta("flip/victim", fsys.Entry{Type: fsys.TypeFile, Mode: 0o777})
		r.RemoveAll("flip/sub")
	}
	stop.Store(true)
	flips := <-done
	if after := snapshot(t, f.outside); after != before {
		t.Errorf("outside directory changed during the race:\nbefore\n%s\nafter\n%s", before, after)
	}
	t.Logf("%d flips, %d creates inside, %d refused", flips, ok, refused)
	if ok == 0 || refused == 0 || flips == 0 {
		t.Errorf("race not exercised: %d flips, %d creates, %d refusals", flips, ok, refused)
	}
}
