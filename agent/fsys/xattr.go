package fsys

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The *xattrat system calls (Linux 6.13+) act on dirfd+name with
// AT_SYMLINK_NOFOLLOW, so the final component is never followed and no
// /proc path is needed. On older kernels (ENOSYS) every call falls back to
// the l*xattr calls on "/proc/self/fd/<dirfd>/<name>": the kernel follows
// the magic link for the directory only, and the l* variants do not follow
// the final name.

// xattrArgs is struct xattr_args of the *xattrat calls.
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// listxattrat lists attribute names of dirfd/name (or of dirfd itself with
// name "" and AT_EMPTY_PATH) into buf.
func listxattrat(dirfd int, name string, flags int, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	return listxattratC(dirfd, name, p, flags, buf)
}

// listxattratC is listxattrat with name also given NUL-terminated (p).
func listxattratC(dirfd int, name string, p *byte, flags int, buf []byte) (int, error) {
	var bp unsafe.Pointer
	if len(buf) > 0 {
		bp = unsafe.Pointer(&buf[0])
	}
	n, _, e := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags), uintptr(bp), uintptr(len(buf)), 0)
	runtime.KeepAlive(p)
	if e != 0 {
		if e == unix.ENOSYS && flags&unix.AT_EMPTY_PATH == 0 {
			return unix.Llistxattr(procPath(dirfd, name), buf)
		}
		return 0, e
	}
	return int(n), nil
}

func getxattrat(dirfd int, name string, flags int, attr string, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return 0, err
	}
	args := xattrArgs{size: uint32(len(buf))}
	if len(buf) > 0 {
		args.value = uint64(uintptr(unsafe.Pointer(&buf[0])))
	}
	n, _, e := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags), uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(p)
	runtime.KeepAlive(a)
	runtime.KeepAlive(buf)
	if e != 0 {
		if e == unix.ENOSYS && flags&unix.AT_EMPTY_PATH == 0 {
			return unix.Lgetxattr(procPath(dirfd, name), attr, buf)
		}
		return 0, e
	}
	return int(n), nil
}

func setxattrat(dirfd int, name string, flags int, attr string, val []byte) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return err
	}
	args := xattrArgs{size: uint32(len(val))}
	if len(val) > 0 {
		args.value = uint64(uintptr(unsafe.Pointer(&val[0])))
	}
	_, _, e := unix.Syscall6(unix.SYS_SETXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags), uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(p)
	runtime.KeepAlive(a)
	runtime.KeepAlive(val)
	if e != 0 {
		if e == unix.ENOSYS && flags&unix.AT_EMPTY_PATH == 0 {
			return unix.Lsetxattr(procPath(dirfd, name), attr, val, 0)
		}
		return e
	}
	return nil
}

func removexattrat(dirfd int, name string, flags int, attr string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	a, err := unix.BytePtrFromString(attr)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_REMOVEXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags), uintptr(unsafe.Pointer(a)), 0, 0)
	runtime.KeepAlive(p)
	runtime.KeepAlive(a)
	if e != 0 {
		if e == unix.ENOSYS && flags&unix.AT_EMPTY_PATH == 0 {
			return unix.Lremovexattr(procPath(dirfd, name), attr)
		}
		return e
	}
	return nil
}

// xattrTarget is where attribute calls act: dirfd+name with
// AT_SYMLINK_NOFOLLOW, or an open fd (fd >= 0, name ignored) through the
// f*xattr calls.
type xattrTarget struct {
	dirfd int
	name  string
	cname *byte // name NUL-terminated, if the caller has it
	fd    int
}

func (t xattrTarget) list(buf []byte) (int, error) {
	if t.fd >= 0 {
		return unix.Flistxattr(t.fd, buf)
	}
	if t.cname != nil {
		return listxattratC(t.dirfd, t.name, t.cname, unix.AT_SYMLINK_NOFOLLOW, buf)
	}
	return listxattrat(t.dirfd, t.name, unix.AT_SYMLINK_NOFOLLOW, buf)
}

func (t xattrTarget) get(attr string, buf []byte) (int, error) {
	if t.fd >= 0 {
		return unix.Fgetxattr(t.fd, attr, buf)
	}
	return getxattrat(t.dirfd, t.name, unix.AT_SYMLINK_NOFOLLOW, attr, buf)
}

func (t xattrTarget) set(attr string, val []byte) error {
	if t.fd >= 0 {
		return unix.Fsetxattr(t.fd, attr, val, 0)
	}
	return setxattrat(t.dirfd, t.name, unix.AT_SYMLINK_NOFOLLOW, attr, val)
}

func (t xattrTarget) remove(attr string) error {
	if t.fd >= 0 {
		return unix.Fremovexattr(t.fd, attr)
	}
	return removexattrat(t.dirfd, t.name, unix.AT_SYMLINK_NOFOLLOW, attr)
}

// unsupportedXattr reports errors meaning "this object or file system has
// no extended attributes", which read as an empty list.
func unsupportedXattr(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

// listNames returns the attribute names of t. A first call with a small
// stack-sized buffer answers the common case (no attributes, or a few) in
// one system call.
func (t xattrTarget) listNames() ([]string, error) {
	var small [512]byte
	buf := small[:]
	for {
		n, err := t.list(buf)
		if err == unix.ERANGE {
			sz, err := t.list(nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err != nil {
			if unsupportedXattr(err) {
				return nil, nil
			}
			return nil, err
		}
		var names []string
		for b := buf[:n]; len(b) > 0; {
			i := 0
			for i < len(b) && b[i] != 0 {
				i++
			}
			if i > 0 {
				names = append(names, string(b[:i]))
			}
			if i == len(b) {
				break
			}
			b = b[i+1:]
		}
		return names, nil
	}
}

// readXattrs returns every attribute of t, sorted by name.
func (t xattrTarget) readXattrs() ([]Xattr, error) {
	names, err := t.listNames()
	if err != nil || len(names) == 0 {
		return nil, err
	}
	slices.Sort(names)
	out := make([]Xattr, 0, len(names))
	var small [256]byte
	for _, name := range names {
		buf := small[:]
		for {
			n, err := t.get(name, buf)
			if err == unix.ERANGE {
				sz, err := t.get(name, nil)
				if err != nil {
					return nil, fmt.Errorf("getxattr %s: %w", name, err)
				}
				buf = make([]byte, sz+64)
				continue
			}
			if err == unix.ENODATA {
				break // removed between list and get
			}
			if err != nil {
				return nil, fmt.Errorf("getxattr %s: %w", name, err)
			}
			out = append(out, Xattr{Name: name, Value: slices.Clone(buf[:n])})
			break
		}
	}
	return out, nil
}
