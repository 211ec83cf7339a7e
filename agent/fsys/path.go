package fsys

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrEscapes is returned whenever a relative path would leave the root: an
// absolute path, a ".." component, or a resolution the kernel refused as
// escaping (EXDEV from RESOLVE_BENEATH).
var ErrEscapes = errors.New("fsys: path escapes the root")

// ErrInvalidPath is returned for a relative path that is malformed without
// escaping: a NUL byte, an empty or "." component, a trailing slash, or a
// component longer than 255 bytes.
var ErrInvalidPath = errors.New("fsys: invalid relative path")

// ErrSymlinkInPath is returned when a symlink is met where none may be
// followed: at any intermediate component of a path, or at the final
// component of an operation that needs a directory or a regular file. The
// error also wraps the kernel's errno (usually ELOOP).
var ErrSymlinkInPath = errors.New("fsys: symlink in path")

// ErrExchangeUnsupported is returned by Root.Exchange when the file system
// refuses RENAME_EXCHANGE.
var ErrExchangeUnsupported = errors.New("fsys: atomic exchange not supported by the file system")

// maxName is the longest name Linux file systems accept.
const maxName = 255

// chunkMax bounds the path handed to one openat2 call, below PATH_MAX (4096)
// so that deeper paths are resolved in several hops.
const chunkMax = 3800

// CleanRel checks that rel is a clean relative path and returns it
// unchanged. "" (the root itself) is valid. It returns an error wrapping
// ErrEscapes for an absolute path or a ".." component, and one wrapping
// ErrInvalidPath for a NUL byte, an empty or "." component (including a
// trailing or doubled slash) or a component over 255 bytes.
func CleanRel(rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if rel[0] == '/' {
		return "", fmt.Errorf("fsys: %q is absolute: %w", rel, ErrEscapes)
	}
	if strings.IndexByte(rel, 0) >= 0 {
		return "", fmt.Errorf("fsys: %q contains NUL: %w", rel, ErrInvalidPath)
	}
	for c := range strings.SplitSeq(rel, "/") {
		switch {
		case c == "..":
			return "", fmt.Errorf("fsys: %q has a '..' component: %w", rel, ErrEscapes)
		case c == "" || c == ".":
			return "", fmt.Errorf("fsys: %q has an empty or '.' component: %w", rel, ErrInvalidPath)
		case len(c) > maxName:
			return "", fmt.Errorf("fsys: %q has a component over %d bytes: %w", rel, maxName, ErrInvalidPath)
		}
	}
	return rel, nil
}

// resolveHow is the openat2 policy for every lookup beneath a root:
// never leave the starting directory, never follow any symlink (so not
// magic links either). RESOLVE_NO_XDEV is deliberately absent: a system
// migration's target root legitimately holds mount points (bind mounts,
// /boot, /home on other file systems), and crossing into a mount below the
// root cannot leave the root.
const resolveHow = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// walk opens rel (already clean, non-empty) beneath the directory fd dirfd
// with the given open flags, never following a symlink and never leaving
// dirfd. Paths longer than chunkMax are resolved in several openat2 hops,
// each itself confined beneath the directory the previous hop opened, which
// is beneath dirfd. It falls back to a component-by-component openat walk
// with O_NOFOLLOW on kernels without openat2.
func walk(dirfd int, rel string, flags int) (int, error) {
	cur := dirfd
	rest := rel
	for {
		chunk := rest
		last := true
		if len(rest) > chunkMax {
			cut := strings.LastIndexByte(rest[:chunkMax], '/')
			if cut <= 0 {
				cut = strings.IndexByte(rest, '/') // never longer than 255 bytes
			}
			chunk, rest, last = rest[:cut], rest[cut+1:], false
		}
		fl := flags
		if !last {
			fl = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
		}
		fd, err := openBeneath(cur, chunk, fl)
		if cur != dirfd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		if last {
			return fd, nil
		}
		cur = fd
	}
}

// openBeneath is one confined openat2 hop, retried on EAGAIN (which the
// kernel returns when a concurrent rename makes the check inconclusive).
func openBeneath(dirfd int, path string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Resolve: resolveHow}
	if flags&unix.O_CREAT != 0 {
		how.Mode = 0o600
	}
	for range 16 {
		fd, err := unix.Openat2(dirfd, path, &how)
		switch err {
		case nil:
			return fd, nil
		case unix.EAGAIN, unix.EINTR:
			continue
		case unix.ENOSYS:
			return openComponents(dirfd, path, flags)
		case unix.ELOOP:
			return -1, fmt.Errorf("%w: %w", ErrSymlinkInPath, err)
		case unix.ENOTDIR:
			// O_DIRECTORY|O_NOFOLLOW reports a final symlink as ENOTDIR;
			// an O_PATH|O_NOFOLLOW probe opens the symlink itself.
			probe := unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: resolveHow}
			if pfd, perr := unix.Openat2(dirfd, path, &probe); perr == nil {
				var st unix.Stat_t
				serr := unix.Fstat(pfd, &st)
				unix.Close(pfd)
				if serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
					return -1, fmt.Errorf("%w: %w", ErrSymlinkInPath, err)
				}
			}
			return -1, err
		case unix.EXDEV:
			return -1, fmt.Errorf("%w: %w", ErrEscapes, err)
		default:
			return -1, err
		}
	}
	return -1, unix.EAGAIN
}

// openComponents is the pre-openat2 fallback: one openat per component,
// each with O_NOFOLLOW, intermediates as O_PATH|O_DIRECTORY.
func openComponents(dirfd int, path string, flags int) (int, error) {
	cur := dirfd
	parts := strings.Split(path, "/")
	for i, p := range parts {
		fl := unix.O_PATH | unix.O_DIRECTORY
		if i == len(parts)-1 {
			fl = flags
		}
		fd, err := unix.Openat(cur, p, fl|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		symlink := err == unix.ELOOP || (err == unix.ENOTDIR && isSymlinkAt(cur, p))
		if cur != dirfd {
			unix.Close(cur)
		}
		if symlink {
			return -1, fmt.Errorf("%w: %w", ErrSymlinkInPath, err)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}

func isSymlinkAt(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// parent is a resolved parent directory and the final name to act on.
type parent struct {
	fd    int // O_PATH directory fd; owned only if own
	own   bool
	name  string
	isTop bool // rel was "": name is "." and fd is the root itself
}

func (p parent) close() {
	if p.own {
		unix.Close(p.fd)
	}
}
