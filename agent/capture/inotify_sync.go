package capture

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Keeping inotify's watch paths true.
//
// A watch is added by path when its directory's creation is read, which may
// be well after it happened: renames already queued behind that event are
// then replayed onto a path that was resolved after them, and the watch ends
// up under a name the directory never had. Each watch added while events
// were pending is therefore checked when the reader reaches the point in the
// stream where it was added: its path must then be the one it was added
// under. If replaying moved it, the path is set back, and both names are
// reported as OpRescan (what was reported in between is unreliable), and
// whatever now lives at the wrong name is watched too.

// watchCheck is a watch whose path must be checked at stream offset at.
type watchCheck struct {
	wd   int32
	path string
	at   int64
}

// noteWatch records a watch just added for rel.
func (b *inotifyBackend) noteWatch(wd int32, rel string) {
	if old, ok := b.wds[wd]; ok && old != rel && b.byPath[old] == wd {
		delete(b.byPath, old) // the same directory, known under another name
	}
	b.wds[wd] = rel
	b.byPath[rel] = wd
	pending, err := unix.IoctlGetInt(b.fd, unix.TIOCINQ) // FIONREAD: bytes queued
	if err != nil {
		pending = 1 << 30 // unknown: check once everything read so far is done
	}
	if b.trace != nil {
		b.trace("watch wd=%d %q pending=%d consumed=%d bufEnd=%d", wd, rel, pending, b.consumed, b.bufEnd)
	}
	if pending > 0 || b.consumed < b.bufEnd {
		b.checks = append(b.checks, watchCheck{wd, rel, b.bufEnd + int64(pending)})
	}
}

// validate checks the watches whose stream offset has been reached.
func (b *inotifyBackend) validate(now time.Time, out []Event) []Event {
	for len(b.checks) > 0 && b.checks[0].at <= b.consumed {
		c := b.checks[0]
		b.checks = b.checks[1:]
		cur, ok := b.wds[c.wd]
		if !ok || cur == c.path {
			continue
		}
		if b.trace != nil {
			b.trace("fix wd=%d %q -> %q", c.wd, cur, c.path)
		}
		if b.byPath[cur] == c.wd {
			delete(b.byPath, cur)
		}
		b.wds[c.wd] = c.path
		b.byPath[c.path] = c.wd
		for _, p := range []string{c.path, cur} {
			if !b.filter.excluded(p, true) {
				out = append(out, Event{Op: OpRescan, Path: p, Dir: true, Time: now})
			}
		}
		out = append(out, b.watchTree(cur, false, now)...)
	}
	return out
}

// resync rebuilds every watch after events were lost (queue overflow): what
// is still queued is discarded, the tree is walked again, and the root is
// reported as OpRescan. Processing of the current buffer stops.
func (b *inotifyBackend) resync(now time.Time) []Event {
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(b.fd, buf)
		if n <= 0 || errors.Is(err, unix.EAGAIN) {
			break
		}
	}
	old := b.wds
	b.wds, b.byPath = map[int32]string{}, map[string]int32{}
	b.unwatched, b.lost = map[string]bool{}, map[string]bool{}
	b.checks, b.pendingFrom = nil, nil
	b.consumed, b.bufEnd = 0, 0
	b.abort = true
	out := []Event{{Op: OpRescan, Dir: true, Time: now}}
	out = append(out, b.watchTree("", false, now)...)
	for wd := range old {
		if _, ok := b.wds[wd]; !ok {
			unix.InotifyRmWatch(b.fd, uint32(wd))
		}
	}
	return out
}
