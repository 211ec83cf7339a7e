package fsys

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// The Root operations that create, rename and remove names. Each resolves
// its parent directories with parentOf and acts on final names with *at
// calls that never follow a symlink (see doc.go).

// Rename renames oldRel to newRel (renameat2 without flags: an existing
// newRel is replaced atomically, as rename(2) does). Neither final
// component is followed; symlinks in the parents are refused.
func (r *Root) Rename(oldRel, newRel string) error {
	return r.rename("rename", oldRel, newRel, 0)
}

// Exchange atomically swaps aRel and bRel (renameat2 RENAME_EXCHANGE).
// Returns an error wrapping ErrExchangeUnsupported when the file system
// refuses the flag.
func (r *Root) Exchange(aRel, bRel string) error {
	err := r.rename("exchange", aRel, bRel, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("%w: %w", ErrExchangeUnsupported, err)
	}
	return err
}

func (r *Root) rename(op, oldRel, newRel string, flags uint) error {
	po, err := r.parentOf(op, oldRel)
	if err != nil {
		return err
	}
	defer po.close()
	pn, err := r.parentOf(op, newRel)
	if err != nil {
		return err
	}
	defer pn.close()
	if po.isTop || pn.isTop {
		return r.pathErr(op, oldRel+" -> "+newRel, unix.EBUSY)
	}
	if err := unix.Renameat2(po.fd, po.name, pn.fd, pn.name, flags); err != nil {
		return r.pathErr(op, oldRel+" -> "+newRel, err)
	}
	return nil
}

// Mkdir creates the directory rel with mode (before umask; ApplyMeta sets
// the final mode). An existing directory at rel is not an error; any other
// existing object is (EEXIST; for a symlink the error also wraps
// ErrSymlinkInPath), and a symlink at rel is never followed.
func (r *Root) Mkdir(rel string, mode uint32) error {
	p, err := r.parentOf("mkdir", rel)
	if err != nil {
		return err
	}
	defer p.close()
	return r.mkdirAt(p.fd, p.name, rel, mode)
}

func (r *Root) mkdirAt(dirfd int, name, rel string, mode uint32) error {
	err := unix.Mkdirat(dirfd, name, mode)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				return nil
			case unix.S_IFLNK:
				return r.pathErr("mkdir", rel, fmt.Errorf("%w: %w", ErrSymlinkInPath, err))
			}
		}
	}
	if err != nil {
		return r.pathErr("mkdir", rel, err)
	}
	return nil
}

// MkdirAll creates rel and any missing parents with mode 0700 (ApplyMeta
// sets the final modes). It walks one component at a time, refusing a
// symlink or non-directory at any component.
func (r *Root) MkdirAll(rel string) error {
	if _, err := CleanRel(rel); err != nil {
		return r.pathErr("mkdirall", rel, err)
	}
	if rel == "" {
		return nil
	}
	cur := r.fd
	done := ""
	defer func() {
		if cur != r.fd {
			unix.Close(cur)
		}
	}()
	rest := rel
	for rest != "" {
		name := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			name, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		done = joinRel(done, name)
		if err := r.mkdirAt(cur, name, done, 0o700); err != nil {
			return err
		}
		fd, err := openBeneath(cur, name, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return r.pathErr("mkdirall", done, err)
		}
		if cur != r.fd {
			unix.Close(cur)
		}
		cur = fd
	}
	return nil
}

// Symlink creates the symlink rel pointing to target. target is stored
// verbatim (it may be absolute, dangling or point anywhere: it is data, and
// no Root operation ever follows it). An existing rel is EEXIST.
func (r *Root) Symlink(target, rel string) error {
	p, err := r.parentOf("symlink", rel)
	if err != nil {
		return err
	}
	defer p.close()
	if err := unix.Symlinkat(target, p.fd, p.name); err != nil {
		return r.pathErr("symlink", rel, err)
	}
	return nil
}

// Link creates newRel as a hard link to existingRel, both beneath the
// root. A symlink at existingRel is linked itself, never followed.
func (r *Root) Link(existingRel, newRel string) error {
	po, err := r.parentOf("link", existingRel)
	if err != nil {
		return err
	}
	defer po.close()
	pn, err := r.parentOf("link", newRel)
	if err != nil {
		return err
	}
	defer pn.close()
	if po.isTop || pn.isTop {
		return r.pathErr("link", existingRel+" -> "+newRel, unix.EPERM)
	}
	if err := unix.Linkat(po.fd, po.name, pn.fd, pn.name, 0); err != nil {
		return r.pathErr("link", existingRel+" -> "+newRel, err)
	}
	return nil
}

// Mknod creates the special file rel described by e: a FIFO, a character
// or block device (e.Rdev), or a socket node (which no process listens
// on). The initial mode is e.Mode&0777; ApplyMeta sets owner and the full
// mode. Other types are EINVAL.
func (r *Root) Mknod(rel string, e Entry) error {
	switch e.Type {
	case TypeFIFO, TypeChar, TypeBlock, TypeSocket:
	default:
		return r.pathErr("mknod", rel, fmt.Errorf("cannot mknod a %s: %w", e.Type, unix.EINVAL))
	}
	p, err := r.parentOf("mknod", rel)
	if err != nil {
		return err
	}
	defer p.close()
	if err := unix.Mknodat(p.fd, p.name, e.Type.ifmt()|e.Mode&0o777, int(e.Rdev)); err != nil {
		return r.pathErr("mknod", rel, err)
	}
	return nil
}

// Remove removes the file, symlink, special file or empty directory rel.
// A symlink is removed, never followed. Removing the root itself is EBUSY.
func (r *Root) Remove(rel string) error {
	p, err := r.parentOf("remove", rel)
	if err != nil {
		return err
	}
	defer p.close()
	if p.isTop {
		return r.pathErr("remove", rel, unix.EBUSY)
	}
	err = unix.Unlinkat(p.fd, p.name, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(p.fd, p.name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return r.pathErr("remove", rel, err)
	}
	return nil
}

// RemoveAll removes rel and everything beneath it. It never follows a
// symlink (a symlink is unlinked, whatever it points to) and never leaves
// the root: each directory is opened with O_NOFOLLOW relative to its
// parent's fd. A missing rel is not an error. Removing the root itself is
// EBUSY (remove its children instead).
func (r *Root) RemoveAll(rel string) error {
	p, err := r.parentOf("removeall", rel)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer p.close()
	if p.isTop {
		return r.pathErr("removeall", rel, unix.EBUSY)
	}
	if err := removeAllAt(p.fd, p.name); err != nil {
		return r.pathErr("removeall", rel, err)
	}
	return nil
}

func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	for {
		kids, err := ReadDir(fd)
		if err != nil {
			unix.Close(fd)
			return err
		}
		if len(kids) == 0 {
			break
		}
		for _, k := range kids {
			if err := removeAllAt(fd, k.Path); err != nil {
				unix.Close(fd)
				return fmt.Errorf("%s/%s: %w", name, k.Path, err)
			}
		}
	}
	unix.Close(fd)
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if err == unix.ENOENT {
		return nil
	}
	return err
}
