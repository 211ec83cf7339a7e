package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const inotifyMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK

// inotifyEventSize is sizeof(struct inotify_event) without the name:
// { __s32 wd; __u32 mask; __u32 cookie; __u32 len; char name[]; }.
const inotifyEventSize = 16

// movePairWait is how long an IN_MOVED_FROM left at the end of a read waits
// for its IN_MOVED_TO before it is reported as a delete. The kernel queues
// both halves together, so only a read boundary can separate them.
const movePairWait = 5 * time.Millisecond

// inotifyBackend watches every directory under the root with its own watch.
// All fields after setup are owned by the run goroutine.
type inotifyBackend struct {
	root     string
	filter   filter
	q        *queue
	log      *slog.Logger
	interval time.Duration
	fd       int
	file     *os.File
	// addWatch is unix.InotifyAddWatch; tests replace it to simulate the
	// watch limit.
	addWatch func(fd int, path string, mask uint32) (int, error)

	wds    map[int32]string // watch descriptor -> directory (relative)
	byPath map[string]int32 // directory (relative) -> watch descriptor
	// unwatched holds subtrees that could not be watched (watch limit); they
	// are reported as OpRescan every interval until a watch succeeds.
	unwatched map[string]bool
	// lost holds directories reported created whose watch could not be
	// added because the path was already gone (renamed or removed before
	// the event was read). A later rename of them or an ancestor retries.
	lost map[string]bool
	// consumed is the stream offset of the next event to translate and
	// bufEnd that of the end of the buffer being translated; checks are
	// watches to verify at a stream offset (see inotify_sync.go).
	consumed, bufEnd int64
	checks           []watchCheck
	// abort stops translating the current buffer (after a resync).
	abort bool
	// trace, when set (tests), receives a line per raw event and decision.
	trace func(format string, args ...any)
	// pendingFrom is an IN_MOVED_FROM waiting for its IN_MOVED_TO.
	pendingFrom *inotifyRaw
}

type inotifyRaw struct {
	wd     int32
	mask   uint32
	cookie uint32
	name   string
}

func newInotify(opts Options, f filter, q *queue) (*inotifyBackend, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	b := &inotifyBackend{
		root: opts.Root, filter: f, q: q, log: opts.Logger, interval: opts.RescanInterval, fd: fd,
		wds: map[int32]string{}, byPath: map[string]int32{}, unwatched: map[string]bool{}, lost: map[string]bool{},
		addWatch: unix.InotifyAddWatch,
	}
	if _, err := unix.InotifyAddWatch(fd, opts.Root, inotifyMask); err != nil {
		unix.Close(fd)
		return nil, err
	}
	now := time.Now()
	q.push(b.watchTree("", false, now)...)
	b.file = os.NewFile(uintptr(fd), "inotify")
	return b, nil
}

func (b *inotifyBackend) close() error { return b.file.Close() }

func (b *inotifyBackend) abs(rel string) string {
	if rel == "" {
		return b.root
	}
	if b.root == "/" {
		return "/" + rel
	}
	return b.root + "/" + rel
}

// watchTree adds watches for directory rel and every directory under it,
// then lists each one. With emit set, every entry found is reported as
// OpCreate (entries created before the watch existed would otherwise be
// missed). A subtree that hits the watch limit is reported as OpRescan and
// remembered for periodic rescans.
func (b *inotifyBackend) watchTree(rel string, emit bool, now time.Time) []Event {
	var out []Event
	var walk func(rel string)
	walk = func(rel string) {
		wd, err := b.addWatch(b.fd, b.abs(rel), inotifyMask)
		switch {
		case errors.Is(err, unix.ENOSPC):
			if len(b.unwatched) == 0 {
				b.log.Warn("capture: inotify watch limit reached (fs.inotify.max_user_watches); falling back to periodic rescans",
					"subtree", rel, "every", b.interval)
			}
			b.unwatched[rel] = true
			out = append(out, Event{Op: OpRescan, Path: rel, Dir: true, Time: now})
			return
		case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
			// Gone from this path, which may only be stale: a rename of it
			// or an ancestor may still be queued. That rename retries it.
			b.lost[rel] = true
			return
		case err != nil:
			b.log.Warn("capture: cannot watch directory; rescanning it periodically", "dir", rel, "err", err)
			b.unwatched[rel] = true
			out = append(out, Event{Op: OpRescan, Path: rel, Dir: true, Time: now})
			return
		}
		b.noteWatch(int32(wd), rel)
		ents, err := os.ReadDir(b.abs(rel))
		if err != nil {
			return
		}
		for _, e := range ents {
			crel := joinRel(rel, e.Name())
			if b.filter.excluded(crel, e.IsDir()) {
				continue
			}
			if emit {
				out = append(out, Event{Op: OpCreate, Path: crel, Dir: e.IsDir(), Time: now})
			}
			if e.IsDir() {
				walk(crel)
			}
		}
	}
	walk(rel)
	return out
}

// unwatch forgets the watches of rel and its subtree (moved out or deleted).
func (b *inotifyBackend) unwatch(rel string) {
	for p, wd := range b.byPath {
		if p == rel || strings.HasPrefix(p, rel+"/") {
			unix.InotifyRmWatch(b.fd, uint32(wd))
			delete(b.byPath, p)
			delete(b.wds, wd)
		}
	}
	for _, set := range []map[string]bool{b.unwatched, b.lost} {
		for p := range set {
			if p == rel || strings.HasPrefix(p, rel+"/") {
				delete(set, p)
			}
		}
	}
}

// renameWatches rewrites the paths of watches under a renamed directory.
func (b *inotifyBackend) renameWatches(from, to string) {
	re := func(p string) (string, bool) {
		if p == from {
			return to, true
		}
		if strings.HasPrefix(p, from+"/") {
			return to + p[len(from):], true
		}
		return "", false
	}
	moved := map[string]int32{}
	for p, wd := range b.byPath {
		if np, ok := re(p); ok {
			delete(b.byPath, p)
			moved[np] = wd
			b.wds[wd] = np
		}
	}
	for p, wd := range moved {
		b.byPath[p] = wd
	}
	for _, set := range []map[string]bool{b.unwatched, b.lost} {
		var moved []string
		for p := range set {
			if np, ok := re(p); ok {
				delete(set, p)
				moved = append(moved, np)
			}
		}
		for _, p := range moved {
			set[p] = true
		}
	}
}

// retryLost adds watches for lost directories under rel (just renamed):
// each is reported as OpRescan, since events in it were missed.
func (b *inotifyBackend) retryLost(rel string, now time.Time, out []Event) []Event {
	for p := range b.lost {
		if p == rel || strings.HasPrefix(p, rel+"/") {
			delete(b.lost, p)
			if !b.filter.excluded(p, true) {
				out = append(out, Event{Op: OpRescan, Path: p, Dir: true, Time: now})
			}
			out = append(out, b.watchTree(p, false, now)...)
		}
	}
	return out
}

func (b *inotifyBackend) run(ctx context.Context) {
	buf := make([]byte, 64<<10)
	nextTick := time.Now().Add(b.interval)
	for {
		deadline := nextTick
		if b.pendingFrom != nil {
			deadline = time.Now().Add(movePairWait)
		}
		b.file.SetReadDeadline(deadline)
		n, err := b.file.Read(buf)
		now := time.Now()
		switch {
		case err == nil:
			b.q.push(b.process(buf[:n], now)...)
		case errors.Is(err, os.ErrDeadlineExceeded):
			var out []Event
			if b.pendingFrom != nil {
				out = b.flushFrom(now, out)
			}
			if !now.Before(nextTick) {
				out = b.rescanUnwatched(now, out)
				nextTick = now.Add(b.interval)
			}
			b.q.push(out...)
		default:
			if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
				b.log.Error("capture: inotify read failed; stopping", "err", err)
				b.q.push(Event{Op: OpRescan, Dir: true, Time: now})
			}
			return
		}
	}
}

// rescanUnwatched retries the watches of unwatched subtrees and reports each
// as OpRescan (whatever changed there since the last round was not seen).
func (b *inotifyBackend) rescanUnwatched(now time.Time, out []Event) []Event {
	for rel := range b.unwatched {
		delete(b.unwatched, rel)
		b.watchTree(rel, false, now) // re-marks what still cannot be watched
		out = append(out, Event{Op: OpRescan, Path: rel, Dir: true, Time: now})
	}
	return out
}

// process translates a buffer read from the inotify fd. It is the seam tests
// use to feed synthetic kernel events.
func (b *inotifyBackend) process(buf []byte, now time.Time) []Event {
	var out []Event
	b.bufEnd = b.consumed + int64(len(buf))
	defer func() { b.consumed = b.bufEnd }()
	for len(buf) >= inotifyEventSize {
		out = b.validate(now, out)
		ev := inotifyRaw{
			wd:     int32(binary.NativeEndian.Uint32(buf[0:])),
			mask:   binary.NativeEndian.Uint32(buf[4:]),
			cookie: binary.NativeEndian.Uint32(buf[8:]),
		}
		nl := int(binary.NativeEndian.Uint32(buf[12:]))
		if inotifyEventSize+nl > len(buf) {
			b.log.Warn("capture: malformed inotify event; rescanning root")
			return append(out, b.resync(now)...)
		}
		name := buf[inotifyEventSize : inotifyEventSize+nl]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		ev.name = string(name)
		buf = buf[inotifyEventSize+nl:]
		if b.trace != nil {
			b.trace("ev @%d wd=%d(%q) mask=%#x cookie=%d name=%q", b.consumed, ev.wd, b.wds[ev.wd], ev.mask, ev.cookie, ev.name)
		}
		out = b.translate(ev, now, out)
		if b.abort {
			b.abort = false
			return out
		}
		b.consumed += int64(inotifyEventSize + nl)
	}
	b.consumed = b.bufEnd
	return b.validate(now, out)
}

func (b *inotifyBackend) translate(ev inotifyRaw, now time.Time, out []Event) []Event {
	if ev.mask&unix.IN_Q_OVERFLOW != 0 {
		b.log.Warn("capture: inotify queue overflow; rescanning root", "root", b.root)
		return append(out, b.resync(now)...)
	}
	if ev.mask&unix.IN_MOVED_TO != 0 && b.pendingFrom != nil && b.pendingFrom.cookie == ev.cookie {
		from := *b.pendingFrom
		b.pendingFrom = nil
		return b.rename(from, ev, now, out)
	}
	out = b.flushFrom(now, out)
	if ev.mask&unix.IN_IGNORED != 0 {
		if p, ok := b.wds[ev.wd]; ok {
			delete(b.wds, ev.wd)
			if b.byPath[p] == ev.wd {
				delete(b.byPath, p)
			}
		}
		return out
	}
	dir, ok := b.wds[ev.wd]
	if !ok {
		return out // a watch already forgotten
	}
	isDir := ev.mask&unix.IN_ISDIR != 0
	if ev.name == "" {
		// An event on a watched directory itself; its parent reports the
		// same change by name, except for the root.
		if dir != "" {
			return out
		}
		switch {
		case ev.mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
			b.log.Warn("capture: watched root was removed or moved", "root", b.root)
			return append(out, Event{Op: OpRescan, Dir: true, Time: now})
		case ev.mask&unix.IN_ATTRIB != 0:
			return append(out, Event{Op: OpAttrib, Dir: true, Time: now})
		}
		return out
	}
	if ev.mask&unix.IN_MOVED_FROM != 0 {
		b.pendingFrom = &ev
		return out
	}
	rel := joinRel(dir, ev.name)
	if b.filter.excluded(rel, isDir) {
		return out
	}
	e := Event{Path: rel, Dir: isDir, Time: now}
	switch {
	case ev.mask&unix.IN_MOVED_TO != 0: // moved in from outside the root
		if isDir {
			e.Op = OpRescan
			out = append(out, e)
			return append(out, b.watchTree(rel, false, now)...)
		}
		e.Op = OpCreate
		return append(out, e)
	case ev.mask&unix.IN_CREATE != 0:
		e.Op = OpCreate
		out = append(out, e)
		if isDir {
			// Entries that came and went before the watch existed left no
			// event; the creates found by the scan cannot report them, so
			// the new directory is also reported for a rescan.
			out = append(out, b.watchTree(rel, true, now)...)
			out = append(out, Event{Op: OpRescan, Path: rel, Dir: true, Time: now})
		}
	case ev.mask&(unix.IN_MODIFY|unix.IN_CLOSE_WRITE) != 0:
		e.Op = OpModify
		out = append(out, e)
	case ev.mask&unix.IN_ATTRIB != 0:
		e.Op = OpAttrib
		out = append(out, e)
	case ev.mask&unix.IN_DELETE != 0:
		if isDir {
			b.unwatch(rel)
		}
		e.Op = OpDelete
		out = append(out, e)
	}
	return out
}

// flushFrom reports a pending IN_MOVED_FROM that found no partner: the entry
// left the watched tree.
func (b *inotifyBackend) flushFrom(now time.Time, out []Event) []Event {
	from := b.pendingFrom
	if from == nil {
		return out
	}
	b.pendingFrom = nil
	dir, ok := b.wds[from.wd]
	if !ok {
		return out
	}
	rel := joinRel(dir, from.name)
	isDir := from.mask&unix.IN_ISDIR != 0
	if isDir {
		b.unwatch(rel)
	}
	if b.filter.excluded(rel, isDir) {
		return out
	}
	return append(out, Event{Op: OpDelete, Path: rel, Dir: isDir, Time: now})
}

func (b *inotifyBackend) rename(from, to inotifyRaw, now time.Time, out []Event) []Event {
	fdir, ok1 := b.wds[from.wd]
	tdir, ok2 := b.wds[to.wd]
	if !ok1 || !ok2 {
		b.log.Warn("capture: rename in a forgotten directory; rescanning root")
		return append(out, Event{Op: OpRescan, Dir: true, Time: now})
	}
	isDir := to.mask&unix.IN_ISDIR != 0
	oldRel, newRel := joinRel(fdir, from.name), joinRel(tdir, to.name)
	if isDir {
		// An empty directory replaced by the rename keeps its entry until
		// its IN_IGNORED arrives; removing its watch here could remove the
		// moved directory's own, when that was added under newRel already.
		b.renameWatches(oldRel, newRel)
	}
	inOld, inNew := !b.filter.excluded(oldRel, isDir), !b.filter.excluded(newRel, isDir)
	switch {
	case inOld && inNew:
		out = append(out, Event{Op: OpRename, Path: newRel, From: oldRel, Dir: isDir, Time: now})
	case inOld:
		out = append(out, Event{Op: OpDelete, Path: oldRel, Dir: isDir, Time: now})
	case inNew && isDir:
		out = append(out, Event{Op: OpRescan, Path: newRel, Dir: true, Time: now})
		out = append(out, b.watchTree(newRel, false, now)...)
	case inNew:
		out = append(out, Event{Op: OpCreate, Path: newRel, Time: now})
	}
	if isDir {
		out = b.retryLost(newRel, now, out)
	}
	return out
}
