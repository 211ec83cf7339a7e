package fsys

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ApplyMeta makes the metadata of rel equal to e: owner, mode, xattrs
// (including POSIX ACLs and file capabilities) and access+modification
// times. It never follows a symlink at rel: a symlink gets lchown, its
// trusted.* and security.* attributes, and its times (AT_SYMLINK_NOFOLLOW);
// its mode is left alone (Linux has none). e.Type must match what is at
// rel, otherwise nothing is changed and the error wraps EINVAL.
//
// Order, each for a reason:
//  1. lchown — chown clears setuid/setgid and security.capability;
//  2. xattrs other than security.capability are set, and attributes that
//     rel has but e lacks are removed (e.g. an ACL inherited from a default
//     ACL of the parent) — the access ACL also rewrites the group bits;
//  3. chmod with the full 07777 mode, after chown so setuid/setgid stay;
//  4. security.capability, after chown which would clear it;
//  5. atime and mtime, last, so that nothing done here or before (content
//     writes, creating children of a directory) disturbs them.
//
// Every step is attempted; failures are joined into one returned error
// (e.g. EPERM on trusted.* without CAP_SYS_ADMIN), so the caller can
// record the partial result. For a directory call it after the content is
// complete: its mtime is set here, and a read-only mode would stop later
// creations inside it (for an unprivileged agent).
func (r *Root) ApplyMeta(rel string, e Entry) error {
	p, err := r.parentOf("applymeta", rel)
	if err != nil {
		return err
	}
	defer p.close()
	var st unix.Stat_t
	if err := unix.Fstatat(p.fd, p.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return r.pathErr("applymeta", rel, err)
	}
	if got := typeFromMode(st.Mode); got != e.Type {
		return r.pathErr("applymeta", rel, fmt.Errorf("is a %s, entry is a %s: %w", got, e.Type, unix.EINVAL))
	}
	m := metaTarget{dirfd: p.fd, name: p.name, fd: -1, symlink: e.Type == TypeSymlink}
	if err := m.apply(e, &st); err != nil {
		return r.pathErr("applymeta", rel, err)
	}
	return nil
}

// ApplyMetaFD is ApplyMeta through an open file (a temporary file before
// its rename into place). f's type must match e.Type. The file's size and
// content are the caller's; this sets owner, xattrs, mode, capability and
// times in the order ApplyMeta documents.
func ApplyMetaFD(f *os.File, e Entry) error {
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "applymeta", Path: f.Name(), Err: err}
	}
	if got := typeFromMode(st.Mode); got != e.Type {
		return &os.PathError{Op: "applymeta", Path: f.Name(),
			Err: fmt.Errorf("is a %s, entry is a %s: %w", got, e.Type, unix.EINVAL)}
	}
	m := metaTarget{fd: fd}
	if err := m.apply(e, &st); err != nil {
		return &os.PathError{Op: "applymeta", Path: f.Name(), Err: err}
	}
	return nil
}

// metaTarget is the object metadata is applied to: an open fd (fd >= 0),
// or dirfd+name acted on with AT_SYMLINK_NOFOLLOW.
type metaTarget struct {
	dirfd   int
	name    string
	fd      int
	symlink bool
}

func (m metaTarget) xattrs() xattrTarget { return xattrTarget{dirfd: m.dirfd, name: m.name, fd: m.fd} }

// apply sets e's metadata. st is the object's stat taken just before: a
// step whose outcome is already there is skipped (lchown when the owner
// matches; chmod when, in addition, no attribute was changed and the mode
// matches; utimensat when both times match), which changes nothing in the
// result: chown is what clears setuid/setgid and security.capability, and
// an ACL written here is what could change the mode.
func (m metaTarget) apply(e Entry, st *unix.Stat_t) error {
	var errs []error
	step := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	chowned := st.Uid != e.Uid || st.Gid != e.Gid
	if chowned {
		step("chown", m.chown(e.Uid, e.Gid))
	}
	changed, err := m.syncXattrs(e.Xattrs)
	step("xattrs", err)
	if !m.symlink && (chowned || changed || st.Mode&0o7777 != e.Mode&0o7777) {
		step("chmod", m.chmod(e.Mode&0o7777))
	}
	if v, ok := e.Xattr(xattrCapability); ok {
		step("set "+xattrCapability, m.xattrs().set(xattrCapability, v))
	}
	if st.Atim.Nano() != e.AtimeNs || st.Mtim.Nano() != e.MtimeNs {
		step("utimensat", m.utimes(e.AtimeNs, e.MtimeNs))
	}
	return errors.Join(errs...)
}

func (m metaTarget) chown(uid, gid uint32) error {
	if m.fd >= 0 {
		return unix.Fchown(m.fd, int(uid), int(gid))
	}
	return unix.Fchownat(m.dirfd, m.name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW)
}

// chmod sets the mode without following a symlink at the name:
// fchmodat2(AT_SYMLINK_NOFOLLOW) (Linux 6.6+), else an O_PATH|O_NOFOLLOW
// fd of the exact inode changed through its /proc/self/fd magic link.
func (m metaTarget) chmod(mode uint32) error {
	if m.fd >= 0 {
		return unix.Fchmod(m.fd, mode)
	}
	name, err := unix.BytePtrFromString(m.name)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(m.dirfd), uintptr(unsafe.Pointer(name)),
		uintptr(mode), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	if e == 0 {
		return nil
	}
	if e != unix.ENOSYS {
		return e
	}
	return chmodViaProc(m.dirfd, m.name, mode)
}

// chmodViaProc is chmod without fchmodat2: it pins the exact inode with an
// O_PATH|O_NOFOLLOW fd, refuses a symlink, and changes the inode through
// its /proc/self/fd magic link.
func chmodViaProc(dirfd int, name string, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP
	}
	return unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), mode)
}

func (m metaTarget) utimes(atimeNs, mtimeNs int64) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(atimeNs), unix.NsecToTimespec(mtimeNs)}
	if m.fd >= 0 {
		// utimensat(fd, NULL, ts, 0) acts on the fd itself.
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(m.fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e != 0 {
			return e
		}
		return nil
	}
	return unix.UtimesNanoAt(m.dirfd, m.name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}

// syncXattrs makes the attributes of the target equal to want, except
// security.capability which apply sets after chmod. Attributes present but
// not wanted are removed first (an inherited default ACL must not survive
// as an extra). Unchanged values are not rewritten. changed reports whether
// any attribute was set or removed.
func (m metaTarget) syncXattrs(want []Xattr) (changed bool, err error) {
	t := m.xattrs()
	have, err := t.readXattrs()
	if err != nil {
		return false, fmt.Errorf("read: %w", err)
	}
	var errs []error
	for _, h := range have {
		if _, ok := (&Entry{Xattrs: want}).Xattr(h.Name); ok {
			continue
		}
		changed = true
		if err := t.remove(h.Name); err != nil && err != unix.ENODATA {
			errs = append(errs, fmt.Errorf("remove %s: %w", h.Name, err))
		}
	}
	for _, w := range want {
		if w.Name == xattrCapability {
			continue
		}
		if v, ok := (&Entry{Xattrs: have}).Xattr(w.Name); ok && string(v) == string(w.Value) {
			continue
		}
		changed = true
		if err := t.set(w.Name, w.Value); err != nil {
			errs = append(errs, fmt.Errorf("set %s: %w", w.Name, err))
		}
	}
	return changed, errors.Join(errs...)
}
