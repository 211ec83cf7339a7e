package fsys_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
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

// node is the verifier's own view of one object, gathered with plain
// syscalls (openat walk, fstatat, readlinkat, l*xattr), not package fsys.
type node struct {
	mode     uint32 // full st_mode
	uid, gid uint32
	size     int64 // regular files only
	mtime    int64
	atime    int64
	rdev     uint64
	target   string
	xattrs   map[string]string
	sum      [32]byte // regular files only
	ino      uint64
}

// scanTree walks base with openat/getdents (os.File.Readdirnames) and
// returns every object by relative path ("" is the root).
func scanTree(t *testing.T, base string) map[string]node {
	t.Helper()
	out := map[string]node{}
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	out[""] = statNode(t, fd, ".")
	scanDir(t, fd, "", out)
	return out
}

func scanDir(t *testing.T, fd int, rel string, out map[string]node) {
	t.Helper()
	d := os.NewFile(uintptr(fd), rel)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatalf("readdir %q: %v", rel, err)
	}
	for _, name := range names {
		r := join(rel, name)
		n := statNode(t, fd, name)
		switch n.mode & unix.S_IFMT {
		case unix.S_IFDIR:
			cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err != nil {
				t.Fatalf("open dir %q: %v", r, err)
			}
			scanDir(t, cfd, r, out)
		case unix.S_IFREG:
			cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
			if err != nil {
				t.Fatalf("open %q: %v", r, err)
			}
			f := os.NewFile(uintptr(cfd), r)
			h := sha256.New()
			if _, err := h.Write(must(os.ReadFile("/proc/self/fd/" + strconv.Itoa(cfd)))); err != nil {
				t.Fatal(err)
			}
			f.Close()
			copy(n.sum[:], h.Sum(nil))
		}
		out[r] = n
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func statNode(t *testing.T, dirfd int, name string) node {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatalf("fstatat %q: %v", name, err)
	}
	n := node{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Nano(), atime: st.Atim.Nano(), ino: st.Ino, xattrs: map[string]string{}}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.size = st.Size
	case unix.S_IFCHR, unix.S_IFBLK:
		n.rdev = st.Rdev
	case unix.S_IFLNK:
		buf := make([]byte, 4096)
		k, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			t.Fatal(err)
		}
		n.target = string(buf[:k])
	}
	p := fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
	lbuf := make([]byte, 64<<10)
	k, err := unix.Llistxattr(p, lbuf)
	if err != nil {
		t.Fatalf("llistxattr %q: %v", name, err)
	}
	for x := range strings.SplitSeq(strings.TrimRight(string(lbuf[:k]), "\x00"), "\x00") {
		if x == "" {
			continue
		}
		vbuf := make([]byte, 64<<10)
		vk, err := unix.Lgetxattr(p, x, vbuf)
		if err != nil {
			t.Fatalf("lgetxattr %q %s: %v", name, x, err)
		}
		n.xattrs[x] = string(vbuf[:vk])
	}
	return n
}

// linkGroups returns the sets of paths sharing an inode (only sets > 1).
func linkGroups(tree map[string]node) [][]string {
	byIno := map[uint64][]string{}
	for rel, n := range tree {
		if n.mode&unix.S_IFMT != unix.S_IFDIR {
			byIno[n.ino] = append(byIno[n.ino], rel)
		}
	}
	var out [][]string
	for _, g := range byIno {
		if len(g) > 1 {
			slices.Sort(g)
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

func TestFidelityRoundTrip(t *testing.T) {
	base := fidelityDir(t)
	srcDir, dstDir := filepath.Join(base, "src"), filepath.Join(base, "dst")
	for _, d := range []string{srcDir, dstDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buildTree(t, srcDir)
	want := scanTree(t, srcDir) // before the copy: reading changes atimes only

	src, err := fsys.OpenRoot(srcDir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := fsys.OpenRoot(dstDir)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	c, err := copyTree(src, dst)
	if err != nil {
		t.Fatalf("reference copy: %v", err)
	}
	got := scanTree(t, dstDir)

	// 1. Same set of paths, and every attribute equal (atime aside, as the
	// copy read the source files; inode numbers aside).
	if a, b := slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)); !slices.Equal(a, b) {
		t.Fatalf("path sets differ:\nsrc %q\ndst %q", a, b)
	}
	for rel, w := range want {
		g := got[rel]
		w.atime, g.atime, w.ino, g.ino = 0, 0, 0, 0
		if fmt.Sprint(w) != fmt.Sprint(g) {
			t.Errorf("%q differs:\nsrc %+v\ndst %+v", rel, w, g)
		}
	}
	if len(want) < 60 {
		t.Errorf("tree has only %d objects; the builder is broken", len(want))
	}

	// 2. Hardlinks stay links (a file with 3 names, a symlink with 2).
	wg, gg := linkGroups(want), linkGroups(got)
	if fmt.Sprint(wg) != fmt.Sprint(gg) || len(wg) != 2 {
		t.Errorf("hardlink groups: src %q dst %q", wg, gg)
	}

	// 3. Holes stay holes.
	checkSparse(t, dstDir)
	if c.bytes >= sparseSize {
		t.Errorf("copier wrote %d data bytes, holes were copied", c.bytes)
	}

	// 4. Specific attributes through the tools users would use.
	for _, rel := range []string{aclFile, aclDir, aclDir + "/inherited", aclDir + "/subdir", "regular"} {
		ws, gs := getfacl(t, filepath.Join(srcDir, rel)), getfacl(t, filepath.Join(dstDir, rel))
		if ws != gs {
			t.Errorf("getfacl %s:\nsrc %s\ndst %s", rel, ws, gs)
		}
	}
	if s := getfacl(t, filepath.Join(dstDir, aclFile)); !strings.Contains(s, "user:1001:rwx") || !strings.Contains(s, "group:2002:r-x") {
		t.Errorf("access ACL lost on %s: %s", aclFile, s)
	}
	if s := getfacl(t, filepath.Join(dstDir, aclDir)); !strings.Contains(s, "default:user:1001:rwx") {
		t.Errorf("default ACL lost on %s: %s", aclDir, s)
	}
	if out, err := exec.Command("getcap", filepath.Join(dstDir, capName)).CombinedOutput(); err != nil || !strings.Contains(string(out), "cap_net_raw=ep") {
		t.Errorf("getcap %s: %v %s", capName, err, out)
	}
	for rel, mode := range map[string]uint32{"setuid": unix.S_ISUID | 0o755, "setgid": unix.S_ISGID | 0o711, "sticky": unix.S_ISVTX | 0o777, "ro": 0o555, "ro/inner": 0o500} {
		if g := got[rel].mode & 0o7777; g != mode {
			t.Errorf("%s mode %o, want %o", rel, g, mode)
		}
	}
	if g := got["setuid"]; g.uid != 12345 || g.gid != 54321 {
		t.Errorf("setuid owner %d:%d", g.uid, g.gid)
	}
	if g := got["link-abs"]; g.uid != 4242 || g.gid != 4343 || g.mtime != symlinkTime+1 || g.target != "/etc/passwd" {
		t.Errorf("symlink metadata lost: %+v", g)
	}
	if g := got["fifo"]; g.atime != nsAtime+5 || g.mtime != nsMtime+5 {
		t.Errorf("fifo times %d/%d, want atime %d mtime %d", g.atime, g.mtime, nsAtime+5, nsMtime+5)
	}
	if g := got["setgid-dir"].mode & 0o7777; g != unix.S_ISGID|0o775 {
		t.Errorf("setgid-dir mode %o", g)
	}
	if g := got["regular"]; g.mtime != nsMtime {
		t.Errorf("regular mtime %d, want %d", g.mtime, nsMtime)
	}
	if g := got["char-null"]; g.rdev != unix.Mkdev(1, 3) {
		t.Errorf("char rdev %x", g.rdev)
	}
	if g := readAllAt(t, dstDir, deepRel()+"/bottom"); string(g) != "at the bottom" {
		t.Errorf("deep file content %q", g)
	}
	if len(deepRel()) <= 4096 {
		t.Fatalf("deep path is only %d bytes", len(deepRel()))
	}

	// 5. The fsys view agrees with the independent one, and CompareMeta
	// finds nothing between source and copy.
	for rel, w := range want {
		se, err := src.Lstat(rel)
		if err != nil {
			t.Fatalf("src Lstat %q: %v", rel, err)
		}
		de, err := dst.Lstat(rel)
		if err != nil {
			t.Fatalf("dst Lstat %q: %v", rel, err)
		}
		if se.Mode != w.mode&0o7777 || se.Uid != w.uid || se.MtimeNs != w.mtime || se.Target != w.target || len(se.Xattrs) != len(w.xattrs) {
			t.Errorf("fsys.Lstat %q = %+v disagrees with syscalls %+v", rel, se, w)
		}
		for _, x := range se.Xattrs {
			if w.xattrs[x.Name] != string(x.Value) {
				t.Errorf("fsys.Lstat %q xattr %s = %q, syscalls say %q", rel, x.Name, x.Value, w.xattrs[x.Name])
			}
		}
		if d := fsys.CompareMeta(se, de); len(d) != 0 {
			t.Errorf("CompareMeta %q: %v", rel, d)
		}
	}
}

func checkSparse(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, sparseName)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hole, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_HOLE)
	if err != nil || hole != 4096 {
		t.Errorf("first hole of %s at %d (%v), want 4096", sparseName, hole, err)
	}
	data, err := unix.Seek(int(f.Fd()), 4096, unix.SEEK_DATA)
	if err != nil || data != 1<<20 {
		t.Errorf("second data of %s at %d (%v), want 1 MiB", sparseName, data, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != sparseSize || st.Blocks*512 > 64<<10 {
		t.Errorf("%s size %d, allocated %d bytes: holes were filled", sparseName, st.Size, st.Blocks*512)
	}
}

func getfacl(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("getfacl", "--numeric", "--absolute-names", "--omit-header", path).CombinedOutput()
	if err != nil {
		t.Fatalf("getfacl %s: %v: %s", path, err, out)
	}
	return string(bytes.TrimSpace(out))
}
