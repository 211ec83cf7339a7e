package agent

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"golang.org/x/sys/unix"
)

// tree builds every kind of object the fidelity suite checks, with the
// metadata it checks, and returns the relative paths by role.
type tree struct {
	t    *testing.T
	root string
}

func (tr tree) p(rel string) string { return filepath.Join(tr.root, rel) }

func (tr tree) must(err error) {
	tr.t.Helper()
	if err != nil {
		tr.t.Fatal(err)
	}
}

func (tr tree) file(rel string, data []byte, mode uint32) {
	tr.t.Helper()
	tr.must(os.MkdirAll(filepath.Dir(tr.p(rel)), 0o755))
	tr.must(os.WriteFile(tr.p(rel), data, 0o600))
	tr.must(unix.Chmod(tr.p(rel), mode))
}

// times sets atime and mtime with odd nanoseconds, never following a
// symlink.
func (tr tree) times(rel string, sec int64) {
	tr.t.Helper()
	ts := []unix.Timespec{{Sec: sec, Nsec: 111111111}, {Sec: sec + 1, Nsec: 123456789}}
	tr.must(unix.UtimesNanoAt(unix.AT_FDCWD, tr.p(rel), ts, unix.AT_SYMLINK_NOFOLLOW))
}

// deepLevels directories of deepName make a relative path over PATH_MAX.
const deepLevels = 45

// openDeep opens (creating when create is set) the chain of deepLevels
// directories beneath root with openat, which has no PATH_MAX limit, and
// returns the fd of the last one.
func openDeep(t *testing.T, root string, create bool) int {
	t.Helper()
	fd, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range deepLevels {
		if create {
			unix.Mkdirat(fd, deepName, 0o755)
		}
		nfd, err := unix.Openat(fd, deepName, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = nfd
	}
	return fd
}

func writeDeep(t *testing.T, root string, levels int, data []byte) {
	fd := openDeep(t, root, true)
	defer unix.Close(fd)
	f, err := unix.Openat(fd, "leaf", unix.O_CREAT|unix.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(f, data)
	unix.Close(f)
}

func readDeep(t *testing.T, root string) []byte {
	fd := openDeep(t, root, false)
	defer unix.Close(fd)
	f, err := unix.Openat(fd, "leaf", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(f)
	buf := make([]byte, 100)
	n, _ := unix.Read(f, buf)
	return buf[:n]
}

const deepName = "this-is-a-fairly-long-directory-name-used-to-build-a-deep-path-beyond-PATH_MAX-0123456789abcdef"

func buildTree(t *testing.T, root string) {
	tr := tree{t: t, root: root}
	tr.file("plain", []byte("hello\n"), 0o644)
	tr.file("empty", nil, 0o600)
	tr.file("setuid", []byte("#!/bin/sh\n"), 0o4755)
	tr.file("setgid", []byte("x"), 0o2711)
	tr.must(os.MkdirAll(tr.p("sticky"), 0o755))
	tr.must(unix.Chmod(tr.p("sticky"), 0o1777))
	tr.file("owned", []byte("owned"), 0o640)
	tr.must(os.Lchown(tr.p("owned"), 1234, 5678))
	tr.file("name with spaces", []byte("s"), 0o644)
	tr.file("new\nline", []byte("n"), 0o644)
	tr.file("bad\xffutf8\xfe", []byte("b"), 0o644)
	tr.file(strings.Repeat("n", 255), []byte("long name"), 0o644)
	writeDeep(t, root, deepLevels, []byte("deep"))
	// A large file spanning several frames, and a sparse one.
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tr.file("big", big, 0o644)
	f, err := os.Create(tr.p("sparse"))
	tr.must(err)
	f.WriteAt(bytes.Repeat([]byte("D"), 4096), 1<<20)
	f.WriteAt(bytes.Repeat([]byte("E"), 4096), 9<<20)
	tr.must(f.Truncate(16 << 20))
	f.Close()
	// Hardlinks: three names, one inode.
	tr.file("links/a", []byte("linked"), 0o644)
	tr.must(os.Link(tr.p("links/a"), tr.p("links/b")))
	tr.must(os.MkdirAll(tr.p("links/sub"), 0o755))
	tr.must(os.Link(tr.p("links/a"), tr.p("links/sub/c")))
	// Symlinks: relative, absolute, dangling; with their own times and owner.
	tr.must(os.Symlink("plain", tr.p("sym-rel")))
	tr.must(os.Symlink("/etc/passwd", tr.p("sym-abs")))
	tr.must(os.Symlink("does/not/exist", tr.p("sym-dangling")))
	tr.must(os.Lchown(tr.p("sym-rel"), 42, 43))
	// Special files.
	tr.must(unix.Mkfifo(tr.p("fifo"), 0o640))
	tr.must(unix.Mknod(tr.p("chardev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	tr.must(unix.Mknod(tr.p("blockdev"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	// Extended attributes in every namespace, POSIX ACLs, capabilities.
	tr.must(unix.Lsetxattr(tr.p("plain"), "user.color", []byte("blue"), 0))
	tr.must(unix.Lsetxattr(tr.p("plain"), "trusted.secret", []byte{0, 1, 2, 255}, 0))
	tr.must(unix.Lsetxattr(tr.p("plain"), "security.label", []byte("lbl"), 0))
	tr.must(unix.Lsetxattr(tr.p("sym-rel"), "trusted.onlink", []byte("L"), 0))
	tr.must(os.MkdirAll(tr.p("acl/inner"), 0o750))
	tr.file("acl/file", []byte("acl"), 0o640)
	if _, err := exec.LookPath("setfacl"); err == nil {
		tr.must(exec.Command("setfacl", "-m", "u:1001:rw,g:1002:r,m:rw", tr.p("acl/file")).Run())
		tr.must(exec.Command("setfacl", "-d", "-m", "u:1001:rwx", tr.p("acl")).Run())
	}
	tr.file("cap", []byte("\x7fELF"), 0o755)
	if _, err := exec.LookPath("setcap"); err == nil {
		tr.must(exec.Command("setcap", "cap_net_raw,cap_net_bind_service+ep", tr.p("cap")).Run())
	}
	// A read-only directory with content.
	tr.file("ro/inside", []byte("ro"), 0o444)
	tr.must(os.MkdirAll(tr.p("ro/sub"), 0o755))
	tr.must(os.MkdirAll(tr.p("emptydir"), 0o700))

	// Times last, children before parents, symlinks too.
	var all []string
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if filepath.Base(p) == deepName {
			return filepath.SkipDir // beyond PATH_MAX: keeps its own times
		}
		if err == nil && p != root {
			all = append(all, p)
		}
		return nil
	})
	for i := len(all) - 1; i >= 0; i-- {
		rel, _ := filepath.Rel(root, all[i])
		tr.times(rel, 1_500_000_000+int64(i))
	}
	tr.must(unix.Chmod(tr.p("ro"), 0o555))
	tr.times("ro", 1_400_000_000)
	tr.times(".", 1_300_000_000)
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func xattr(p, name string) []byte {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestFidelityAgentToAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for chown, mknod, trusted.* xattrs and capabilities")
	}
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	buildTree(t, src)
	sum, err := env.mirror(t, src, dst, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Skipped) > 0 {
		t.Fatalf("skipped: %+v", sum.Skipped)
	}
	if d := env.verify(t, src, dst, mirror.Options{}); len(d) > 0 {
		t.Fatalf("verify after mirror: %+v", d)
	}

	// Independent checks through syscalls.
	S, D := func(r string) string { return filepath.Join(src, r) }, func(r string) string { return filepath.Join(dst, r) }
	walkBoth := func(fn func(rel string, s, d unix.Stat_t)) {
		filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(p) == deepName {
				return filepath.SkipDir // checked below with openat
			}
			rel, _ := filepath.Rel(src, p)
			fn(rel, lstat(t, p), lstat(t, D(rel)))
			return nil
		})
	}
	walkBoth(func(rel string, s, d unix.Stat_t) {
		if s.Mode != d.Mode || s.Uid != d.Uid || s.Gid != d.Gid {
			t.Errorf("%q: mode/owner %o %d:%d, want %o %d:%d", rel, d.Mode, d.Uid, d.Gid, s.Mode, s.Uid, s.Gid)
		}
		if s.Mtim != d.Mtim {
			t.Errorf("%q: mtime %v, want %v", rel, d.Mtim, s.Mtim)
		}
		if s.Mode&unix.S_IFMT == unix.S_IFREG && s.Size != d.Size {
			t.Errorf("%q: size %d, want %d", rel, d.Size, s.Size)
		}
		if s.Mode&unix.S_IFMT == unix.S_IFCHR || s.Mode&unix.S_IFMT == unix.S_IFBLK {
			if s.Rdev != d.Rdev {
				t.Errorf("%q: rdev %x, want %x", rel, d.Rdev, s.Rdev)
			}
		}
	})
	if got := readDeep(t, dst); string(got) != "deep" {
		t.Errorf("deep leaf beyond PATH_MAX: %q", got)
	}
	for _, rel := range []string{"plain", "big", strings.Repeat("n", 255), "bad\xffutf8\xfe", "new\nline"} {
		a, err1 := os.ReadFile(S(rel))
		b, err2 := os.ReadFile(D(rel))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%q: content differs (%v, %v)", rel[:min(len(rel), 40)], err1, err2)
		}
	}
	if st := lstat(t, D("sparse")); st.Blocks*512 > 1<<20 {
		t.Errorf("sparse: %d bytes allocated for 8 KiB of data: holes were filled", st.Blocks*512)
	}
	a, b, c := lstat(t, D("links/a")), lstat(t, D("links/b")), lstat(t, D("links/sub/c"))
	if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 3 {
		t.Errorf("hardlinks not kept: inodes %d %d %d, nlink %d", a.Ino, b.Ino, c.Ino, a.Nlink)
	}
	for _, rel := range []string{"sym-rel", "sym-abs", "sym-dangling"} {
		want, _ := os.Readlink(S(rel))
		got, err := os.Readlink(D(rel))
		if err != nil || got != want {
			t.Errorf("%s: target %q, want %q (%v)", rel, got, want, err)
		}
	}
	for _, x := range []struct{ rel, name string }{
		{"plain", "user.color"}, {"plain", "trusted.secret"}, {"plain", "security.label"},
		{"sym-rel", "trusted.onlink"}, {"acl/file", "system.posix_acl_access"},
		{"acl", "system.posix_acl_default"}, {"cap", "security.capability"},
	} {
		want := xattr(S(x.rel), x.name)
		if want == nil {
			t.Errorf("test setup: %s has no %s", x.rel, x.name)
			continue
		}
		if got := xattr(D(x.rel), x.name); !bytes.Equal(got, want) {
			t.Errorf("%s %s = %q, want %q", x.rel, x.name, got, want)
		}
	}
	if st := lstat(t, D("ro")); st.Mode&0o777 != 0o555 {
		t.Errorf("ro dir mode %o", st.Mode&0o777)
	}
	if _, err := os.Stat(D("ro/inside")); err != nil {
		t.Errorf("read-only dir not filled: %v", err)
	}

	// A second run finds everything up to date and changes nothing.
	again, err := env.mirror(t, src, dst, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.FilesSent != 0 || again.Target.FilesWritten != 0 || again.Target.MetaUpdated != 0 {
		t.Errorf("no-change re-run: %+v", again)
	}
	if d := env.verify(t, src, dst, mirror.Options{}); len(d) > 0 {
		t.Fatalf("verify after re-run: %+v", d)
	}
}
