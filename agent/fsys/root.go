package fsys

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Root is a directory tree that every operation stays beneath. It holds an
// open file descriptor of the root directory; renaming or moving the root
// directory itself does not change what a Root refers to. A Root is safe
// for concurrent use; Close must not race with other calls.
type Root struct {
	fd   int
	name string // for error messages only
}

// OpenRoot opens the directory dir as a Root. dir itself is resolved like
// any path, symlinks included: it is the operator's choice, not a peer's.
// The confinement applies to every path beneath it.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open root", Path: dir, Err: err}
	}
	return &Root{fd: fd, name: dir}, nil
}

// Sub opens the directory rel beneath r as a Root of its own (for an engine
// that works directory by directory). The result is confined beneath rel,
// hence beneath r.
func (r *Root) Sub(rel string) (*Root, error) {
	f, err := r.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, &os.PathError{Op: "sub", Path: rel, Err: err}
	}
	unix.CloseOnExec(fd)
	return &Root{fd: fd, name: joinRel(r.name, rel)}, nil
}

// Name returns the directory name OpenRoot was given (for messages).
func (r *Root) Name() string { return r.name }

// Close releases the root's file descriptor.
func (r *Root) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// pathErr wraps err with the operation and the relative path.
func (r *Root) pathErr(op, rel string, err error) error {
	return &os.PathError{Op: op, Path: rel, Err: err}
}

// parentOf cleans rel and resolves its parent directory beneath the root
// without following any symlink. For rel == "" the parent is the root fd
// itself and the name is ".".
func (r *Root) parentOf(op, rel string) (parent, error) {
	if _, err := CleanRel(rel); err != nil {
		return parent{}, r.pathErr(op, rel, err)
	}
	if rel == "" {
		return parent{fd: r.fd, name: ".", isTop: true}, nil
	}
	dir, name := splitRel(rel)
	if dir == "" {
		return parent{fd: r.fd, name: name}, nil
	}
	fd, err := walk(r.fd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return parent{}, r.pathErr(op, rel, err)
	}
	return parent{fd: fd, own: true, name: name}, nil
}

// Lstat returns the Entry of rel (see the package-level Lstat), with Path
// set to rel. A symlink at rel is described, not followed; a symlink at an
// intermediate component is an error wrapping ErrSymlinkInPath.
func (r *Root) Lstat(rel string) (Entry, error) {
	p, err := r.parentOf("lstat", rel)
	if err != nil {
		return Entry{}, err
	}
	defer p.close()
	e, err := Lstat(p.fd, p.name)
	if err != nil {
		return Entry{}, r.pathErr("lstat", rel, unwrapPathErr(err))
	}
	e.Path = rel
	return e, nil
}

// OpenDir opens the directory rel for reading (O_DIRECTORY|O_NOFOLLOW),
// confined beneath the root. A symlink anywhere in rel, including the final
// component, is an error wrapping ErrSymlinkInPath.
func (r *Root) OpenDir(rel string) (*os.File, error) {
	if _, err := CleanRel(rel); err != nil {
		return nil, r.pathErr("opendir", rel, err)
	}
	var fd int
	var err error
	if rel == "" {
		fd, err = unix.Openat(r.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	} else {
		fd, err = walk(r.fd, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	}
	if err != nil {
		return nil, r.pathErr("opendir", rel, err)
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// Open opens the regular file rel read-only. A symlink at any component is
// an error wrapping ErrSymlinkInPath; any other non-regular file is refused
// with EINVAL. The file is opened with O_NONBLOCK so that a FIFO swapped in
// at rel cannot block the caller; the flag is cleared before returning.
func (r *Root) Open(rel string) (*os.File, error) {
	return r.openRegular("open", rel, unix.O_RDONLY, 0)
}

// OpenFile opens the regular file rel with flag (O_RDWR, O_CREAT, O_EXCL,
// O_TRUNC, O_APPEND ...) and, when it creates the file, permission perm
// (before umask). O_NOFOLLOW is always added, so a symlink at rel is an
// error wrapping ErrSymlinkInPath; a non-regular file at rel is refused
// with EINVAL. Used for in-place resume of a temporary file.
func (r *Root) OpenFile(rel string, flag int, perm uint32) (*os.File, error) {
	return r.openRegular("openfile", rel, flag, perm)
}

func (r *Root) openRegular(op, rel string, flag int, perm uint32) (*os.File, error) {
	p, err := r.parentOf(op, rel)
	if err != nil {
		return nil, err
	}
	defer p.close()
	if p.isTop {
		return nil, r.pathErr(op, rel, unix.EISDIR)
	}
	fd, err := unix.Openat(p.fd, p.name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, perm)
	if err == unix.ELOOP {
		err = fmt.Errorf("%w: %w", ErrSymlinkInPath, err)
	}
	if err != nil {
		return nil, r.pathErr(op, rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, r.pathErr(op, rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, r.pathErr(op, rel, fmt.Errorf("not a regular file: %w", unix.EINVAL))
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, r.pathErr(op, rel, err)
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// tempPrefix starts every temporary name; engines may recognise and clean
// up stale temporaries by it.
const tempPrefix = ".ferry."

// CreateTemp creates a new empty regular file with mode 0600 in the
// directory dirRel, under a hidden name derived from base:
// ".ferry.<up to 200 bytes of base>.<16 random hex digits>". It returns the
// open file (read-write) and its relative path. The file is created with
// O_EXCL|O_NOFOLLOW, so nothing existing is ever opened.
func (r *Root) CreateTemp(dirRel, base string) (*os.File, string, error) {
	return r.createTemp(dirRel, base, 0o600, true)
}

// CreateTempPerm is CreateTemp for a file whose metadata the caller sets
// next (ApplyMetaFD): the file is created with perm&0o755|0o600 minus the
// umask, and the mode is not forced afterwards. Created with the final
// permission bits, the file usually needs no chmod at all. Write access
// for group and others is never granted to a temporary. Until the caller
// chowns it the file belongs to the agent's user and group (or to the
// directory's group under a setgid directory): a caller whose file will
// belong to another group should clear the group bits of perm, so that no
// one reads the content being written who could not read the final file.
// The owner reads and writes through the returned fd whatever the umask.
func (r *Root) CreateTempPerm(dirRel, base string, perm uint32) (*os.File, string, error) {
	return r.createTemp(dirRel, base, perm&0o755|0o600, false)
}

func (r *Root) createTemp(dirRel, base string, perm uint32, force bool) (*os.File, string, error) {
	var fd int
	rel, err := r.atTempName("createtemp", dirRel, base, func(dirfd int, name string) error {
		var err error
		fd, err = unix.Openat(dirfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if force {
		if err := unix.Fchmod(fd, perm); err != nil { // defeat a restrictive umask
			unix.Close(fd)
			return nil, "", r.pathErr("createtemp", rel, err)
		}
	}
	return os.NewFile(uintptr(fd), rel), rel, nil
}

// atTempName calls try with a new temporary name (".ferry.<base>.<16 hex
// digits>") in directory dirRel until it does not fail with EEXIST (8
// tries) and returns that name relative to the root.
func (r *Root) atTempName(op, dirRel, base string, try func(dirfd int, name string) error) (string, error) {
	p, err := r.parentOf(op, joinRel(dirRel, "x"))
	if err != nil {
		return "", err
	}
	defer p.close()
	if len(base) > 200 {
		base = base[:200]
	}
	for range 8 {
		var rnd [8]byte
		rand.Read(rnd[:])
		name := tempPrefix + base + "." + hex.EncodeToString(rnd[:])
		err := try(p.fd, name)
		if err == unix.EEXIST {
			continue
		}
		rel := joinRel(dirRel, name)
		if err != nil {
			return "", r.pathErr(op, rel, err)
		}
		return rel, nil
	}
	return "", r.pathErr(op, dirRel, unix.EEXIST)
}

// unwrapPathErr strips an *os.PathError so a caller can re-wrap the errno
// with its own path.
func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ReadDir lists the directory rel (OpenDir then the package-level
// ReadDir): names, types and inode numbers, sorted by name bytes.
func (r *Root) ReadDir(rel string) ([]Entry, error) {
	d, err := r.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	kids, err := ReadDir(int(d.Fd()))
	if err != nil {
		return nil, r.pathErr("readdir", rel, err)
	}
	return kids, nil
}

// Space returns the size of the file system holding the root and the
// bytes available to the agent (statfs f_blocks and f_bavail times
// f_frsize), for free-space prechecks.
func (r *Root) Space() (total, avail uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(r.fd, &st); err != nil {
		return 0, 0, r.pathErr("statfs", "", err)
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return st.Blocks * bs, st.Bavail * bs, nil
}

// FileStat is the part of a regular file's stat a reader compares to tell
// whether the file changed: size, mtime and allocated bytes (st_blocks
// times 512; fewer than Size means the file has holes).
type FileStat struct {
	Size      int64
	MtimeNs   int64
	Allocated int64
}

// ReadRegular reads the regular file rel from offset 0 into buf until buf
// is full or the end of the file, and returns the bytes read and the
// file's stat taken after the read (so that a caller comparing it with an
// earlier scan sees a change made during the read). It opens rel exactly
// as Open does (O_NOFOLLOW, O_NONBLOCK, a symlink is an error wrapping
// ErrSymlinkInPath, any other non-regular file is refused with EINVAL
// before anything is read), but with raw file descriptors: a small file
// costs openat, fstat, one pread, fstat and close. A file larger than buf
// is not an error: n == len(buf) and the stat's Size tells.
func (r *Root) ReadRegular(rel string, buf []byte) (n int, st FileStat, err error) {
	p, err := r.parentOf("open", rel)
	if err != nil {
		return 0, FileStat{}, err
	}
	defer p.close()
	if p.isTop {
		return 0, FileStat{}, r.pathErr("open", rel, unix.EISDIR)
	}
	fd, err := unix.Openat(p.fd, p.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err == unix.ELOOP {
		err = fmt.Errorf("%w: %w", ErrSymlinkInPath, err)
	}
	if err != nil {
		return 0, FileStat{}, r.pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	var s unix.Stat_t
	if err := unix.Fstat(fd, &s); err != nil {
		return 0, FileStat{}, r.pathErr("open", rel, err)
	}
	if s.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, FileStat{}, r.pathErr("open", rel, fmt.Errorf("not a regular file: %w", unix.EINVAL))
	}
	for n < len(buf) {
		m, err := unix.Pread(fd, buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, FileStat{}, r.pathErr("read", rel, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	if err := unix.Fstat(fd, &s); err != nil {
		return n, FileStat{}, r.pathErr("fstat", rel, err)
	}
	return n, FileStat{Size: s.Size, MtimeNs: s.Mtim.Nano(), Allocated: s.Blocks * 512}, nil
}
