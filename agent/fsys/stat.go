package fsys

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Lstat returns the full Entry of the child name of the open directory
// dirfd, without following a symlink at name: type, mode, owner, size,
// nanosecond times, rdev, symlink target, every xattr, and Dev/Ino/Nlink.
// name must be a single component, or "." for dirfd itself ("..", "" and
// names with '/' or NUL fail with ErrInvalidPath). Path is set to name. It costs one fstatat plus one listxattrat (plus one getxattrat per
// attribute, and a readlinkat for a symlink).
//
// Errors are *os.PathError wrapping the errno, so errors.Is(err,
// fs.ErrNotExist) works for a missing child.
func Lstat(dirfd int, name string) (Entry, error) {
	if name == "" || name == ".." || strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0 {
		return Entry{}, &os.PathError{Op: "lstat", Path: name, Err: ErrInvalidPath}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Entry{}, &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	e := entryFromStat(name, &st)
	if e.Type == TypeSymlink {
		t, err := readlinkat(dirfd, name, st.Size)
		if err != nil {
			return Entry{}, &os.PathError{Op: "readlink", Path: name, Err: err}
		}
		e.Target = t
	}
	x, err := xattrTarget{dirfd: dirfd, name: name, fd: -1}.readXattrs()
	if err != nil {
		return Entry{}, &os.PathError{Op: "xattrs", Path: name, Err: err}
	}
	e.Xattrs = x
	return e, nil
}

// statFD returns the Entry of an open file (xattrs included).
func statFD(fd int, path string) (Entry, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Entry{}, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	e := entryFromStat(path, &st)
	x, err := xattrTarget{fd: fd}.readXattrs()
	if err != nil {
		return Entry{}, &os.PathError{Op: "xattrs", Path: path, Err: err}
	}
	e.Xattrs = x
	return e, nil
}

func entryFromStat(path string, st *unix.Stat_t) Entry {
	e := Entry{
		Path:    path,
		Type:    typeFromMode(st.Mode),
		Mode:    st.Mode & 0o7777,
		Uid:     st.Uid,
		Gid:     st.Gid,
		Size:    st.Size,
		MtimeNs: st.Mtim.Nano(),
		AtimeNs: st.Atim.Nano(),
		Dev:     st.Dev,
		Ino:     st.Ino,
		Nlink:   uint32(st.Nlink),
	}
	if e.Type == TypeChar || e.Type == TypeBlock {
		e.Rdev = st.Rdev
	}
	return e
}

func readlinkat(dirfd int, name string, size int64) (string, error) {
	n := int(size) + 1
	if n < 64 {
		n = 64
	}
	for {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if m < n {
			return string(buf[:m]), nil
		}
		n *= 2 // target grew between fstatat and readlinkat
	}
}

// ReadDir returns the children of the open directory dirfd (which must be
// opened for reading, as Root.OpenDir does) sorted by name bytes. Only Path
// (the name), Type and Ino are filled; the kernel's d_type is used, with an
// fstatat only when the file system reports DT_UNKNOWN. It rewinds dirfd
// first, so it may be called again on the same fd.
func ReadDir(dirfd int) ([]Entry, error) {
	if _, err := unix.Seek(dirfd, 0, 0); err != nil {
		return nil, fmt.Errorf("fsys: rewind directory: %w", err)
	}
	var out []Entry
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(dirfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fsys: getdents: %w", err)
		}
		if n <= 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
			ino := *(*uint64)(unsafe.Pointer(&b[0]))
			reclen := int(*(*uint16)(unsafe.Pointer(&b[16])))
			dtype := b[18]
			nameb := b[19:reclen]
			if i := slices.Index(nameb, 0); i >= 0 {
				nameb = nameb[:i]
			}
			b = b[reclen:]
			name := string(nameb)
			if name == "." || name == ".." {
				continue
			}
			t := typeFromDirent(dtype)
			if t == 0 {
				var st unix.Stat_t
				if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					if err == unix.ENOENT {
						continue // removed while listing
					}
					return nil, &os.PathError{Op: "lstat", Path: name, Err: err}
				}
				t = typeFromMode(st.Mode)
			}
			out = append(out, Entry{Path: name, Type: t, Ino: ino})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}
