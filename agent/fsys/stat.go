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
	// One NUL-terminated copy of the name serves the fstatat and the
	// listxattrat (the library wrappers would allocate one per call).
	var cbuf [maxName + 1]byte
	cname := cString(&cbuf, name)
	var st unix.Stat_t
	if err := fstatatNoFollow(dirfd, cname, &st); err != nil {
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
	x, err := xattrTarget{dirfd: dirfd, name: name, cname: cname, fd: -1}.readXattrs()
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

// cString returns name NUL-terminated in buf (names are at most maxName
// bytes; Lstat has checked there is no NUL inside).
func cString(buf *[maxName + 1]byte, name string) *byte {
	if len(name) > maxName {
		p, _ := unix.BytePtrFromString(name) // the kernel refuses it: ENAMETOOLONG
		return p
	}
	n := copy(buf[:], name)
	buf[n] = 0
	return &buf[0]
}

// fstatatNoFollow is fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) on a
// NUL-terminated name.
func fstatatNoFollow(dirfd int, name *byte, st *unix.Stat_t) error {
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	if e != 0 {
		return e
	}
	return nil
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
	// Sorted as small records, then widened into Entries: sorting the
	// Entries themselves moves ~150 bytes per swap.
	type dirent struct {
		name string
		ino  uint64
		typ  Type
	}
	var list []dirent
	// 8 KiB holds ~200 entries of short names: one call for a typical
	// directory, without a 32 KiB allocation per listing.
	buf := make([]byte, 8<<10)
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
			list = append(list, dirent{name: name, ino: ino, typ: t})
		}
	}
	slices.SortFunc(list, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]Entry, len(list))
	for i, d := range list {
		out[i] = Entry{Path: d.name, Type: d.typ, Ino: d.ino}
	}
	return out, nil
}
