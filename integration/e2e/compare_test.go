package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// node is what the test compares of one object, read with plain syscalls
// independently of Ferry's own code.
type node struct {
	typ      uint32
	mode     uint32
	uid, gid uint32
	size     int64
	mtime    int64
	rdev     uint64
	target   string
	xattrs   string
	content  [32]byte
	inodeKey string // for hard-link groups: dev/ino on its own side
}

func readNode(path string) (node, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return node{}, err
	}
	n := node{typ: st.Mode & unix.S_IFMT, mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid,
		mtime: st.Mtim.Nano(), rdev: st.Rdev, inodeKey: fmt.Sprintf("%d/%d", st.Dev, st.Ino)}
	if n.typ == unix.S_IFREG || n.typ == unix.S_IFLNK {
		n.size = st.Size
	}
	switch n.typ {
	case unix.S_IFLNK:
		t, err := os.Readlink(path)
		if err != nil {
			return n, err
		}
		n.target = t
	case unix.S_IFREG:
		f, err := os.Open(path)
		if err != nil {
			return n, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return n, err
		}
		copy(n.content[:], h.Sum(nil))
	}
	x, err := xattrs(path)
	if err != nil {
		return n, err
	}
	n.xattrs = x
	return n, nil
}

func xattrs(path string) (string, error) {
	sz, err := unix.Llistxattr(path, nil)
	if err != nil || sz == 0 {
		if err == unix.ENOTSUP {
			err = nil
		}
		return "", err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(path, buf)
	if err != nil {
		return "", err
	}
	names := strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00")
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(path, name, v)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", path, name, err)
		}
		fmt.Fprintf(&b, "%s=%x;", name, v[:vn])
	}
	return b.String(), nil
}

// compareTrees lists every difference in content and metadata between two
// trees (missing, extra, and which property differs), hard-link groups
// included. skip reports relative paths to leave out.
func compareTrees(a, b string, skip func(rel string) bool) ([]string, int, error) {
	walk := func(root string) (map[string]node, error) {
		out := map[string]node{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if rel != "." && skip != nil && skip(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			n, err := readNode(p)
			if err != nil {
				return err
			}
			out[rel] = n
			return nil
		})
		return out, err
	}
	na, err := walk(a)
	if err != nil {
		return nil, 0, err
	}
	nb, err := walk(b)
	if err != nil {
		return nil, 0, err
	}
	var diffs []string
	// Hard links: the set of names of each inode must be the same.
	groups := func(m map[string]node) map[string]string {
		byIno := map[string][]string{}
		for rel, n := range m {
			if n.typ == unix.S_IFREG {
				byIno[n.inodeKey] = append(byIno[n.inodeKey], rel)
			}
		}
		out := map[string]string{}
		for _, names := range byIno {
			sort.Strings(names)
			for _, nm := range names {
				out[nm] = strings.Join(names, "|")
			}
		}
		return out
	}
	ga, gb := groups(na), groups(nb)
	for rel, x := range na {
		y, ok := nb[rel]
		if !ok {
			diffs = append(diffs, "missing on target: "+rel)
			continue
		}
		var what []string
		if x.typ != y.typ {
			what = append(what, "type")
		}
		if x.mode != y.mode {
			what = append(what, fmt.Sprintf("mode %o≠%o", x.mode, y.mode))
		}
		if x.uid != y.uid || x.gid != y.gid {
			what = append(what, "owner")
		}
		if x.size != y.size {
			what = append(what, "size")
		}
		if x.mtime != y.mtime && rel != "." {
			what = append(what, "mtime")
		}
		if x.rdev != y.rdev && (x.typ == unix.S_IFCHR || x.typ == unix.S_IFBLK) {
			what = append(what, "rdev")
		}
		if x.target != y.target {
			what = append(what, "symlink target")
		}
		if x.xattrs != y.xattrs {
			what = append(what, "xattrs")
		}
		if x.content != y.content {
			what = append(what, "content")
		}
		if ga[rel] != gb[rel] {
			what = append(what, "hard links")
		}
		if len(what) > 0 {
			diffs = append(diffs, rel+": "+strings.Join(what, ", "))
		}
	}
	for rel := range nb {
		if _, ok := na[rel]; !ok {
			diffs = append(diffs, "extra on target: "+rel)
		}
	}
	sort.Strings(diffs)
	return diffs, len(na), nil
}
