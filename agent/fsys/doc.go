// Package fsys is Ferry's file-system layer for the data plane: it reads
// everything Ferry preserves about a file (Entry), writes it back with full
// fidelity, and confines every operation of a receiver to the job's target
// root whatever paths a peer sends. Linux only.
//
// # Safety model
//
// A Root holds an open fd of the root directory (OpenRoot resolves the
// root's own path normally, symlinks included: that path is the
// operator's, not a peer's). Every Root method:
//
//  1. checks the relative path with CleanRel: absolute paths and ".."
//     components fail with ErrEscapes; NUL bytes, empty or "." components
//     and components over 255 bytes fail with ErrInvalidPath. Nothing is
//     "cleaned" silently: a peer that sends such a path is broken or
//     hostile, and the engine should see that.
//  2. resolves the parent directory of the final component from the root
//     fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//     RESOLVE_NO_MAGICLINKS) into an O_PATH fd. A symlink at ANY
//     intermediate component fails (ErrSymlinkInPath wrapping ELOOP) — even
//     one that points inside the root, even one created a moment ago by a
//     peer, even a directory swapped for a symlink between two calls: each
//     call resolves afresh, in the kernel, atomically per component. Paths
//     longer than PATH_MAX are resolved in hops of < 3800 bytes, each hop
//     confined beneath the directory the previous hop opened.
//  3. acts on the final name relative to that parent fd with the *at
//     system calls, never following a symlink there: O_NOFOLLOW for opens,
//     AT_SYMLINK_NOFOLLOW for fstatat/fchownat/utimensat/fchmodat2 and the
//     *xattrat calls, linkat without AT_SYMLINK_FOLLOW, unlinkat and
//     renameat2 (which act on the name itself). A final symlink is
//     therefore either described/changed as a symlink (Lstat, ApplyMeta,
//     Remove, Rename, Link) or refused (Open, OpenFile, OpenDir,
//     Mkdir-over-it, MkdirAll through it).
//
// Consequences: no Root operation can create, write, change or delete
// anything outside the root, and no Root operation ever follows a symlink
// in the tree, inside or outside — Ferry's receiver treats symlinks as
// data. Races inside the root (a peer replacing an object between an Lstat
// and an ApplyMeta) can at worst act on the object now at that name inside
// the same parent directory.
//
// RESOLVE_NO_XDEV is deliberately NOT used: a whole-system migration's
// target root holds mount points (bind mounts, /boot, /home, ...), and
// descending into a mount below the root stays below the root. Excluding
// other mounts is the scanner's policy (--profile system), not a safety
// property.
//
// Os.Root (Go 1.24+) was not used: it follows symlinks that stay inside the
// root, which is fine for reading but wrong for a receiver, which must
// never follow a symlink the sender may have planted; and it lacks
// mknod, lchown-by-dirfd, xattrs, renameat2 flags and hole handling.
//
// Kernel requirements: openat2 (5.6), fchmodat2 (6.6) and the *xattrat
// calls (6.13). On ENOSYS each falls back: openat2 to an O_NOFOLLOW openat
// walk per component; fchmodat2 to chmod of /proc/self/fd/N of an
// O_PATH|O_NOFOLLOW fd after checking it is not a symlink; *xattrat to the
// l*xattr calls on /proc/self/fd/<parent>/<name> (the magic link resolves
// the parent fd only; the l* variants do not follow the final name).
//
// Root.Open and Root.OpenFile open with O_NONBLOCK (so a FIFO swapped in
// cannot block) and refuse non-regular files after fstat. A device node
// swapped in at that instant would be opened (and closed) once; on the
// source that needs root on the source host already.
//
// # Metadata order
//
// ApplyMeta/ApplyMetaFD apply: lchown, xattrs (extras removed, ACLs set),
// chmod (after chown, which clears setuid/setgid), security.capability
// (after chown, which clears it), then atime+mtime (last). A step whose
// outcome the object's stat already shows is skipped (same owner: no
// lchown; then no attribute changed and the same mode: no chmod; same
// times: no utimensat), so a file created by CreateTempPerm with its final
// permission bits by an agent of its owner costs fstat, flistxattr and
// utimensat only. Symlinks get
// lchown, their xattrs (only trusted.* and security.* exist on symlinks)
// and times with AT_SYMLINK_NOFOLLOW; their mode is fixed by Linux.
//
// Engine contract for directories: create the directory (Mkdir, mode 0700
// is fine), create and fill all its children, then ApplyMeta the directory
// last (post-order). That keeps directory mtimes (changed by every child
// created) and lets read-only directories be filled before their mode is
// set. Root itself bypasses permission checks, but an unprivileged agent
// would not.
//
// Regular files: CreateTemp (or CreateTempPerm) in the destination
// directory, write the data
// extents (DataExtents on the source; WriteAt only those ranges), Truncate
// to the size (unwritten ranges stay holes), ApplyMetaFD, fsync as the
// engine's durability policy requires, then Rename over the final name.
// Hardlinks: the source reports Dev/Ino/Nlink; the receiver Links later
// names to the first one written.
//
// Errors are *os.PathError (Path relative to the root) wrapping the errno
// or one of the sentinels, so errors.Is works with ErrEscapes,
// ErrInvalidPath, ErrSymlinkInPath, ErrExchangeUnsupported, fs.ErrNotExist
// and fs.ErrExist.
//
// Contract deviations from the original API sketch: none in names or
// signatures. Additions: Root.Sub, Root.Name, Root.ReadDir, Root.Space,
// Root.CreateTempPerm, Root.CreateUnnamed, Root.LinkUnnamed,
// Root.LinkUnnamedTemp (O_TMPFILE files, unnamed.go), Root.ReadRegular (a whole small file through raw
// fds: openat, fstat, pread, fstat, close) with FileStat, PunchHole, ErrInvalidPath, ErrSymlinkInPath, Type.String, Entry.Xattr,
// the DiffKind constants. CleanRel returns ErrEscapes only for absolute
// paths and "..", ErrInvalidPath for the other malformed paths: a receiver
// should treat both (and ErrSymlinkInPath) as a peer naming a path it must
// not.
// CompareMeta never reports DiffMissing, DiffExtra, DiffContent or
// DiffHardlink: those need trees and content, which the engine has.
package fsys
