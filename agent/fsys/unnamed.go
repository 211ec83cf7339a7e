package fsys

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Unnamed files (O_TMPFILE). A new file written under a temporary name and
// renamed into place costs two directory updates (create, then rename);
// an unnamed file written in its directory and linked in when complete
// costs one, and nothing of it is left behind when the writer dies: the
// kernel frees an inode that was never linked.

// ErrUnnamedUnsupported is returned by CreateUnnamed when the file system
// has no O_TMPFILE.
var ErrUnnamedUnsupported = errors.New("the file system cannot create unnamed files (O_TMPFILE)")

// CreateUnnamed creates an unnamed regular file in directory dirRel (""
// for the root itself), open for reading and writing, with permission
// bits perm&0o755|0o600 (as CreateTempPerm); LinkUnnamed names it.
func (r *Root) CreateUnnamed(dirRel string, perm uint32) (*os.File, error) {
	fd := r.fd
	if dirRel != "" {
		if _, err := CleanRel(dirRel); err != nil {
			return nil, r.pathErr("createunnamed", dirRel, err)
		}
		d, err := walk(r.fd, dirRel, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return nil, r.pathErr("createunnamed", dirRel, err)
		}
		defer unix.Close(d)
		fd = d
	}
	nfd, err := unix.Openat(fd, ".", unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, perm&0o755|0o600)
	switch {
	case err == unix.EOPNOTSUPP || err == unix.EISDIR || err == unix.EINVAL:
		return nil, r.pathErr("createunnamed", dirRel, ErrUnnamedUnsupported)
	case err != nil:
		return nil, r.pathErr("createunnamed", dirRel, err)
	}
	return os.NewFile(uintptr(nfd), joinRel(dirRel, "(unnamed)")), nil
}

// LinkUnnamed gives f, a file from CreateUnnamed, the name rel. Like
// link(2) it fails with EEXIST when rel exists: the caller then names it
// with LinkUnnamedTemp and renames that into place.
func (r *Root) LinkUnnamed(f *os.File, rel string) error {
	p, err := r.parentOf("link", rel)
	if err != nil {
		return err
	}
	defer p.close()
	if p.isTop {
		return r.pathErr("link", rel, unix.EEXIST)
	}
	if err := linkFD(int(f.Fd()), p.fd, p.name); err != nil {
		return r.pathErr("link", rel, err)
	}
	return nil
}

// LinkUnnamedTemp gives f, a file from CreateUnnamed, a temporary name in
// directory dirRel (as CreateTemp's) and returns it relative to the root.
func (r *Root) LinkUnnamedTemp(f *os.File, dirRel, base string) (string, error) {
	return r.atTempName("link", dirRel, base, func(dirfd int, name string) error {
		return linkFD(int(f.Fd()), dirfd, name)
	})
}

// linkFD links the open file fd as name in directory dirfd: through
// AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH), else through its /proc entry.
func linkFD(fd, dirfd int, name string) error {
	err := unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH)
	if err == unix.EPERM || err == unix.ENOENT {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
	}
	return err
}

// UnnamedWorks reports whether unnamed files can be created and named
// under the root: O_TMPFILE support, and a link through AT_EMPTY_PATH
// (CAP_DAC_READ_SEARCH) or /proc/self/fd. It creates, names and removes
// one probe file in the root directory and puts back the directory's
// access and modification times (they are part of the copy).
func (r *Root) UnnamedWorks() bool {
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return false
	}
	f, err := r.CreateUnnamed("", 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	tmp, err := r.LinkUnnamedTemp(f, "", "probe")
	if err != nil {
		return false
	}
	ok := r.Remove(tmp) == nil
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(r.fd, ".", ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false
	}
	return ok
}
