package fsys_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Names the fidelity tree uses; the verifier checks some of them by name.
const (
	sparseName  = "sparse"
	sparseSize  = 8 << 20
	capName     = "bin-cap"
	aclFile     = "acl-file"
	aclDir      = "acl-dir"
	deepLevels  = 20 // 20 components of 250 bytes: > 5000 bytes in all
	nsMtime     = 1_700_000_000_123_456_789
	nsAtime     = 1_600_000_000_987_654_321
	symlinkTime = 1_650_000_000_000_000_007
)

var oddNames = []string{"with space", "new\nline", "bad\xff\xfeutf8", strings.Repeat("n", 255), "tab\there", "-dash", "*star?"}

// deepRel is the relative path of the deepest directory of the tree.
func deepRel() string {
	parts := make([]string, deepLevels)
	for i := range parts {
		parts[i] = strings.Repeat("d", 249) + string(rune('a'+i))
	}
	return "deep/" + strings.Join(parts, "/")
}

// tb wraps the builder's checks.
type tb struct {
	t   *testing.T
	dir string
}

func (b tb) p(rel string) string { return filepath.Join(b.dir, rel) }

func (b tb) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b tb) write(rel string, data []byte, mode os.FileMode) {
	b.t.Helper()
	b.must(os.WriteFile(b.p(rel), data, mode))
	b.must(os.Chmod(b.p(rel), mode)) // beat the umask; also sets setuid bits
}

func (b tb) run(name string, args ...string) {
	b.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

func (b tb) times(rel string, atime, mtime int64) {
	b.t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(atime), unix.NsecToTimespec(mtime)}
	b.must(unix.UtimesNanoAt(unix.AT_FDCWD, b.p(rel), ts, unix.AT_SYMLINK_NOFOLLOW))
}

// buildTree creates under dir a tree with every kind of object and
// attribute Ferry preserves, using plain syscalls and the acl/libcap tools
// (never package fsys).
func buildTree(t *testing.T, dir string) {
	b := tb{t, dir}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}

	b.write("regular", random(300_000), 0o644)
	b.write("empty", nil, 0o600)
	b.times("regular", nsAtime, nsMtime)

	// Sparse: data at 0, 1 MiB and 5 MiB, a trailing hole up to 8 MiB.
	f, err := os.OpenFile(b.p(sparseName), os.O_CREATE|os.O_WRONLY, 0o640)
	b.must(err)
	for _, off := range []int64{0, 1 << 20, 5 << 20} {
		_, err := f.WriteAt(random(4096), off)
		b.must(err)
	}
	b.must(f.Truncate(sparseSize))
	b.must(f.Close())

	// Directories, including special modes and odd owners.
	b.must(os.MkdirAll(b.p("dir/sub/subsub"), 0o755))
	b.write("dir/sub/subsub/leaf", []byte("leaf\n"), 0o600)
	b.must(os.Mkdir(b.p("sticky"), 0o755))
	b.must(os.Chmod(b.p("sticky"), os.ModeSticky|0o777))
	b.must(os.Mkdir(b.p("setgid-dir"), 0o755))
	b.must(os.Chmod(b.p("setgid-dir"), os.ModeSetgid|0o775))
	b.must(os.Mkdir(b.p("owned-dir"), 0o750))
	b.must(os.Chown(b.p("owned-dir"), 12345, 54321))
	b.write("owned-dir/owned", []byte("owned"), 0o640)
	b.must(os.Chown(b.p("owned-dir/owned"), 12345, 54321))

	// Mode bits: setuid and setgid survive only if chmod follows chown.
	b.write("setuid", []byte("#!/bin/sh\n"), 0o755)
	b.must(os.Chown(b.p("setuid"), 12345, 54321))
	b.must(os.Chmod(b.p("setuid"), os.ModeSetuid|0o755))
	b.write("setgid", []byte("#!/bin/sh\n"), 0o755)
	b.must(os.Chown(b.p("setgid"), 0, 54321))
	b.must(os.Chmod(b.p("setgid"), os.ModeSetgid|0o711))
	b.write("weird-mode", []byte("x"), 0o000)
	b.must(os.Chmod(b.p("weird-mode"), os.ModeSetuid|os.ModeSetgid|os.ModeSticky|0o007))

	// Symlinks: dangling, absolute, relative, with owner, times and a trusted xattr.
	b.must(os.Symlink("does/not/exist", b.p("link-dangling")))
	b.must(os.Symlink("/etc/passwd", b.p("link-abs")))
	b.must(os.Symlink("../regular", b.p("dir/link-rel")))
	b.must(os.Symlink("sub", b.p("dir/link-to-dir")))
	b.must(unix.Lchown(b.p("link-abs"), 4242, 4343))
	b.must(unix.Lsetxattr(b.p("link-abs"), "trusted.on-symlink", []byte("t\x00v"), 0))
	b.times("link-dangling", nsAtime, symlinkTime)
	b.times("link-abs", nsAtime+1, symlinkTime+1)
	b.times("dir/link-rel", nsAtime+2, symlinkTime+2)

	// Hardlinks: three names, one inode, across directories.
	b.write("hard1", []byte("shared inode\n"), 0o644)
	b.must(os.Link(b.p("hard1"), b.p("dir/hard2")))
	b.must(os.Link(b.p("hard1"), b.p("dir/sub/hard3")))
	// A hardlinked symlink.
	b.must(unix.Linkat(unix.AT_FDCWD, b.p("link-dangling"), unix.AT_FDCWD, b.p("link-dangling-2"), 0))

	// Special files.
	b.must(unix.Mkfifo(b.p("fifo"), 0o640))
	b.must(unix.Mknod(b.p("char-null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	b.must(unix.Mknod(b.p("block-loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
	b.must(unix.Mknod(b.p("socket-node"), unix.S_IFSOCK|0o755, 0))
	b.must(unix.Lchown(b.p("char-null"), 0, 6))
	b.must(unix.Setxattr(b.p("fifo"), "trusted.fifo", []byte("on a fifo"), 0))
	b.times("fifo", nsAtime+5, nsMtime+5) // nothing reads a FIFO: its atime is checkable

	// Xattrs: text, binary with NUL and every byte value, a large value, many names.
	b.write("xattrs", []byte("x"), 0o644)
	b.must(unix.Setxattr(b.p("xattrs"), "user.text", []byte("hello"), 0))
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	b.must(unix.Setxattr(b.p("xattrs"), "user.binary", all, 0))
	b.must(unix.Setxattr(b.p("xattrs"), "user.large", random(1500), 0))
	b.must(unix.Setxattr(b.p("xattrs"), "user.empty", nil, 0))
	b.must(unix.Setxattr(b.p("xattrs"), "trusted.secret", []byte("root only"), 0))
	for i := range 20 {
		name := "user.many-" + strings.Repeat("x", 20) + string(rune('A'+i))
		b.must(unix.Setxattr(b.p("xattrs"), name, []byte{byte(i)}, 0))
	}
	b.must(unix.Setxattr(b.p("dir"), "user.on-dir", []byte("d"), 0))

	// File capability (set after chown by setcap itself).
	b.write(capName, []byte("\x7fELF pretend"), 0o755)
	b.run("setcap", "cap_net_raw+ep", b.p(capName))

	// POSIX ACLs: access ACL on a file, access + default ACL on a directory,
	// and a child that inherited the default.
	b.write(aclFile, []byte("acl"), 0o640)
	b.run("setfacl", "-m", "u:1001:rwx,g:2002:r-x,m::rwx", b.p(aclFile))
	b.must(os.Mkdir(b.p(aclDir), 0o750))
	b.run("setfacl", "-m", "u:1001:rx", b.p(aclDir))
	b.run("setfacl", "-d", "-m", "u:1001:rwx,g:2002:rx", b.p(aclDir))
	b.write(aclDir+"/inherited", []byte("i"), 0o640)
	b.must(os.Mkdir(b.p(aclDir+"/subdir"), 0o750))

	// Odd names.
	b.must(os.Mkdir(b.p("names"), 0o755))
	for i, n := range oddNames {
		b.write("names/"+n, []byte(n), 0o644)
		b.times("names/"+n, nsAtime, nsMtime+int64(i))
	}
	b.must(os.Mkdir(b.p("names/"+strings.Repeat("D", 255)), 0o755))
	b.write("names/"+strings.Repeat("D", 255)+"/"+strings.Repeat("f", 255), []byte("long"), 0o644)

	// A deep path (> PATH_MAX), built with openat so no path exceeds 4096.
	b.must(os.Mkdir(b.p("deep"), 0o755))
	fd, err := unix.Open(b.p("deep"), unix.O_PATH|unix.O_DIRECTORY, 0)
	b.must(err)
	for _, c := range strings.Split(deepRel(), "/")[1:] {
		b.must(unix.Mkdirat(fd, c, 0o755))
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY, 0)
		b.must(err)
		unix.Close(fd)
		fd = nfd
	}
	lfd, err := unix.Openat(fd, "bottom", unix.O_CREAT|unix.O_WRONLY, 0o644)
	b.must(err)
	_, err = unix.Write(lfd, []byte("at the bottom"))
	b.must(err)
	unix.Close(lfd)
	b.must(unix.Symlinkat("../..", fd, "bottom-link"))
	unix.Close(fd)

	// Read-only directories with content (made read-only last).
	b.must(os.MkdirAll(b.p("ro/inner"), 0o755))
	b.write("ro/file", []byte("ro"), 0o444)
	b.write("ro/inner/file", []byte("ro inner"), 0o400)
	b.must(os.Chmod(b.p("ro/inner"), 0o500))
	b.must(os.Chmod(b.p("ro"), 0o555))

	// Directory times last, children before parents.
	b.times("dir/sub/subsub", nsAtime, nsMtime+100)
	b.times("dir/sub", nsAtime, nsMtime+200)
	b.times("dir", nsAtime, nsMtime+300)
	b.times("ro", nsAtime, nsMtime+400)
}

// readAllAt reads a whole file at a relative path that may exceed PATH_MAX.
func readAllAt(t *testing.T, base, rel string) []byte {
	t.Helper()
	fd := openParent(t, base, rel)
	defer unix.Close(fd)
	ffd, err := unix.Openat(fd, filepath.Base(rel), unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		t.Fatalf("open %q: %v", rel, err)
	}
	f := os.NewFile(uintptr(ffd), rel)
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// openParent opens the parent directory of rel beneath base with one
// plain openat per component (the verifier's own walk, independent of
// package fsys).
func openParent(t *testing.T, base, rel string) int {
	t.Helper()
	fd, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(rel, "/")
	for _, c := range parts[:len(parts)-1] {
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("openat %q in %q: %v", c, rel, err)
		}
		fd = nfd
	}
	return fd
}
