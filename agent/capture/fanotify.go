package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fanotify setup.
//
// The group uses FAN_UNLIMITED_QUEUE: with a filesystem-wide mark a burst
// elsewhere on the filesystem could otherwise overflow the default 16384-event
// queue and force a rescan of the whole root, which costs far more than the
// kernel memory a transient backlog takes. The reader never blocks on the
// consumer (see queue), so the kernel queue stays short; what a slow consumer
// leaves buffered in user space is bounded by Options.MaxPending.
//
// Kernel 5.17 or later is needed (FAN_RENAME, FAN_REPORT_TARGET_FID); on an
// older kernel, without CAP_SYS_ADMIN, or on a filesystem that cannot encode
// file handles, setup fails and Watch falls back to inotify.
//
// FAN_RENAME is used instead of FAN_MOVED_FROM/FAN_MOVED_TO: it reports both
// ends of a rename in one event, so no cookie pairing is needed.
// FAN_DELETE_SELF/FAN_MOVE_SELF are not requested: with a filesystem mark they
// would add an event for every unlinked inode on the filesystem, and the
// directory-entry events already carry the target's handle (which is how a
// rename or removal of the root itself is detected).
const (
	fanInitFlags = unix.FAN_CLASS_NOTIF | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK |
		unix.FAN_REPORT_DFID_NAME | unix.FAN_REPORT_FID | unix.FAN_REPORT_TARGET_FID |
		unix.FAN_UNLIMITED_QUEUE
	fanMarkMask = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_RENAME | unix.FAN_MODIFY |
		unix.FAN_CLOSE_WRITE | unix.FAN_ATTRIB | unix.FAN_ONDIR
	// atHandleFID asks name_to_handle_at for the handle fanotify reports.
	atHandleFID = 0x200
	// dirCacheLimit bounds the directory handle cache.
	dirCacheLimit = 1 << 19
)

type fanotifyBackend struct {
	root   string
	filter filter
	q      *queue
	log    *slog.Logger
	file   *os.File

	// Owned by the run goroutine after setup.
	mounts      map[[2]int32]int // fsid -> directory fd on that filesystem
	mountFsid   map[int][2]int32 // mount id -> fsid, for priming
	cache       *dirCache
	handleFlags int
	resolved    int // kernel handle resolutions (cache misses), for tests
}

func newFanotify(opts Options, f filter, q *queue) (_ *fanotifyBackend, err error) {
	fd, err := unix.FanotifyInit(fanInitFlags, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init: %w", err)
	}
	b := &fanotifyBackend{
		root: opts.Root, filter: f, q: q, log: opts.Logger,
		mounts: map[[2]int32]int{}, mountFsid: map[int][2]int32{}, handleFlags: atHandleFID,
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
			b.closeMounts()
		}
	}()
	if err := b.markFS(fd, opts.Root); err != nil {
		return nil, err
	}
	for _, mp := range mountsUnder(opts.Root) {
		rel, _ := relTo(opts.Root, mp)
		if f.excluded(rel, true) {
			continue
		}
		if err := b.markFS(fd, mp); err != nil {
			b.log.Warn("capture: changes under this mount are not captured", "mount", mp, "err", err)
		}
	}
	h, mid, err := b.handle(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("root handle: %w", err)
	}
	rootFid := fid{fsid: b.mountFsid[mid], htype: h.Type(), handle: h.Bytes()}
	b.cache = newDirCache(opts.Root, rootFid.key(), dirCacheLimit)
	b.prime(b.cache.root)
	b.file = os.NewFile(uintptr(fd), "fanotify")
	return b, nil
}

// markFS adds a filesystem mark for the filesystem holding dir and keeps a
// directory fd on it for open_by_handle_at.
func (b *fanotifyBackend) markFS(fd int, dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	fsid := st.Fsid.Val
	if _, ok := b.mounts[fsid]; ok {
		return b.noteMount(dir, fsid)
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, fanMarkMask, unix.AT_FDCWD, dir); err != nil {
		return fmt.Errorf("fanotify_mark %s: %w", dir, err)
	}
	mfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	b.mounts[fsid] = mfd
	return b.noteMount(dir, fsid)
}

func (b *fanotifyBackend) noteMount(dir string, fsid [2]int32) error {
	_, mid, err := b.handle(dir)
	if err != nil {
		return fmt.Errorf("name_to_handle_at %s: %w", dir, err)
	}
	b.mountFsid[mid] = fsid
	return nil
}

// handle returns the fanotify-comparable handle of path and its mount id.
func (b *fanotifyBackend) handle(path string) (unix.FileHandle, int, error) {
	h, mid, err := unix.NameToHandleAt(unix.AT_FDCWD, path, b.handleFlags)
	if errors.Is(err, unix.EINVAL) && b.handleFlags != 0 {
		b.handleFlags = 0 // kernel before AT_HANDLE_FID: same encoding for fanotify-capable filesystems
		h, mid, err = unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	}
	return h, mid, err
}

// prime loads the directories under n (current state) into the cache.
func (b *fanotifyBackend) prime(n *dnode) {
	var walk func(n *dnode, abs string)
	walk = func(n *dnode, abs string) {
		ents, err := os.ReadDir(abs)
		if err != nil {
			return // gone or unreadable: events for it resolve through the kernel
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			cabs := abs + "/" + e.Name()
			if abs == "/" {
				cabs = "/" + e.Name()
			}
			if rel, ok := relTo(b.root, cabs); ok && b.filter.excluded(rel, true) {
				continue
			}
			h, mid, err := b.handle(cabs)
			if err != nil {
				continue
			}
			fsid, ok := b.mountFsid[mid]
			if !ok {
				continue // a filesystem without a mark
			}
			c := b.cache.add(n, e.Name(), fid{fsid: fsid, htype: h.Type(), handle: h.Bytes()}.key())
			if c == nil {
				return // cache full; cache.complete is now false
			}
			walk(c, cabs)
		}
	}
	walk(n, b.cache.path(n))
}

func (b *fanotifyBackend) close() error { return b.file.Close() }

func (b *fanotifyBackend) closeMounts() {
	for _, fd := range b.mounts {
		unix.Close(fd)
	}
}

func (b *fanotifyBackend) run(ctx context.Context) {
	defer b.closeMounts()
	buf := make([]byte, 256<<10)
	var raw []rawEvent
	for {
		n, err := b.file.Read(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
				b.log.Error("capture: fanotify read failed; stopping", "err", err)
				b.q.push(Event{Op: OpRescan, Dir: true, Time: time.Now()})
			}
			return
		}
		now := time.Now()
		raw, err = parseEvents(buf[:n], raw[:0])
		var out []Event
		for i := range raw {
			out = b.translate(raw[i], now, out)
		}
		if err != nil {
			b.log.Warn("capture: malformed fanotify event; rescanning root", "err", err)
			out = append(out, Event{Op: OpRescan, Dir: true, Time: now})
		}
		b.q.push(out...)
	}
}

// dir returns the cache node for a directory handle, resolving it through
// the kernel on a miss. It returns nil when the handle no longer resolves.
func (b *fanotifyBackend) dir(f fid) *dnode {
	if !f.valid() {
		return nil
	}
	key := f.key()
	if n := b.cache.lookup(key); n != nil {
		return n
	}
	mfd, ok := b.mounts[f.fsid]
	if !ok {
		return nil
	}
	b.resolved++
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(f.htype, f.handle), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return nil
	}
	abs, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	unix.Close(fd)
	if err != nil || !strings.HasPrefix(abs, "/") || strings.HasSuffix(abs, " (deleted)") {
		return nil
	}
	n := b.cache.addResolved(abs, key)
	if _, under := relTo(b.root, abs); under && n != b.cache.root {
		b.prime(n)
	}
	return n
}

// unresolved handles an event whose directory handle no longer resolves:
// with a complete cache the directory was never under the root; otherwise
// the root is rescanned, since nothing nearer is known.
func (b *fanotifyBackend) unresolved(now time.Time, out []Event) []Event {
	if b.cache.complete {
		return out
	}
	b.log.Warn("capture: unresolvable directory handle; rescanning root")
	return append(out, Event{Op: OpRescan, Dir: true, Time: now})
}

// entryAbs joins a directory node's path and an entry name.
func (b *fanotifyBackend) entryAbs(n *dnode, name string) string {
	p := b.cache.path(n)
	switch {
	case name == "." || name == "":
		return p
	case p == "/":
		return "/" + name
	}
	return p + "/" + name
}

// visible maps an absolute path to a reported relative path.
func (b *fanotifyBackend) visible(abs string, dir bool) (string, bool) {
	rel, ok := relTo(b.root, abs)
	if !ok || b.filter.excluded(rel, dir) {
		return "", false
	}
	return rel, true
}

// translate turns one kernel event into events under the root, updating the
// directory cache in event order.
func (b *fanotifyBackend) translate(ev rawEvent, now time.Time, out []Event) []Event {
	if ev.mask&unix.FAN_Q_OVERFLOW != 0 {
		// Lost events may include renames and mkdirs: the cache is rebuilt
		// from the current tree.
		b.log.Warn("capture: fanotify queue overflow; rescanning root", "root", b.root)
		if b.cache != nil {
			b.cache = newDirCache(b.root, b.cache.root.key, dirCacheLimit)
			b.prime(b.cache.root)
		}
		return append(out, Event{Op: OpRescan, Dir: true, Time: now})
	}
	isDir := ev.mask&unix.FAN_ONDIR != 0
	if ev.mask&unix.FAN_RENAME != 0 {
		return b.translateRename(ev, isDir, now, out)
	}
	p := b.dir(ev.entry.dir)
	if p == nil {
		return b.unresolved(now, out)
	}
	abs := b.entryAbs(p, ev.entry.name)
	named := ev.entry.name != "." && ev.entry.name != ""
	if isDir && named {
		if ev.mask&unix.FAN_CREATE != 0 {
			if ev.target.valid() {
				b.cache.add(p, ev.entry.name, ev.target.key())
			} else {
				b.cache.complete = false
			}
		}
		if ev.mask&unix.FAN_DELETE != 0 {
			if c := b.cache.child(p, ev.entry.name); c != nil {
				b.cache.remove(c)
			}
		}
	}
	rel, ok := b.visible(abs, isDir)
	if !ok {
		return out
	}
	if abs == b.root && ev.mask&unix.FAN_DELETE != 0 {
		b.log.Warn("capture: watched root was removed", "root", b.root)
		return append(out, Event{Op: OpRescan, Dir: true, Time: now})
	}
	e := Event{Path: rel, Dir: isDir, Time: now}
	add := func(op Op) { e.Op = op; out = append(out, e) }
	if ev.mask&unix.FAN_CREATE != 0 && ev.mask&unix.FAN_DELETE != 0 {
		// Merged create and delete of one name: the order is unknown.
		add(OpRescan)
		return out
	}
	if ev.mask&unix.FAN_CREATE != 0 {
		add(OpCreate)
	}
	if ev.mask&(unix.FAN_MODIFY|unix.FAN_CLOSE_WRITE) != 0 {
		add(OpModify)
	}
	if ev.mask&unix.FAN_ATTRIB != 0 {
		add(OpAttrib)
	}
	if ev.mask&unix.FAN_DELETE != 0 {
		add(OpDelete)
	}
	return out
}

func (b *fanotifyBackend) translateRename(ev rawEvent, isDir bool, now time.Time, out []Event) []Event {
	op, np := b.dir(ev.oldEntry.dir), b.dir(ev.newEntry.dir)
	if op == nil || np == nil {
		if !b.cache.complete {
			return b.unresolved(now, out)
		}
		// A complete cache knows every directory under the root: the
		// unresolvable side is outside it.
	}
	var oldAbs, newAbs string
	if op != nil {
		oldAbs = b.entryAbs(op, ev.oldEntry.name)
	}
	if np != nil {
		newAbs = b.entryAbs(np, ev.newEntry.name)
	}
	if isDir {
		var moved *dnode
		if op != nil {
			moved = b.cache.child(op, ev.oldEntry.name)
		}
		if moved == nil && ev.target.valid() {
			moved = b.cache.lookup(ev.target.key())
		}
		switch {
		case moved == b.cache.root || (oldAbs != "" && strings.HasPrefix(b.root+"/", oldAbs+"/")):
			b.log.Warn("capture: watched root (or an ancestor) was renamed", "root", b.root, "from", oldAbs, "to", newAbs)
			return append(out, Event{Op: OpRescan, Dir: true, Time: now})
		case np == nil:
			if moved != nil {
				b.cache.remove(moved)
			}
		case moved != nil:
			b.cache.move(moved, np, ev.newEntry.name)
		case ev.target.valid():
			if n := b.cache.add(np, ev.newEntry.name, ev.target.key()); n != nil && b.cache.underRoot(n) {
				b.prime(n) // a directory from outside: learn its subdirectories
			}
		}
	}
	relOld, inOld := "", false
	if op != nil {
		relOld, inOld = b.visible(oldAbs, isDir)
	}
	relNew, inNew := "", false
	if np != nil {
		relNew, inNew = b.visible(newAbs, isDir)
	}
	switch {
	case inOld && inNew:
		out = append(out, Event{Op: OpRename, Path: relNew, From: relOld, Dir: isDir, Time: now})
	case inOld:
		out = append(out, Event{Op: OpDelete, Path: relOld, Dir: isDir, Time: now})
	case inNew && isDir:
		// A directory moved in brings content nobody reported.
		out = append(out, Event{Op: OpRescan, Path: relNew, Dir: true, Time: now})
	case inNew:
		out = append(out, Event{Op: OpCreate, Path: relNew, Time: now})
	}
	return out
}
