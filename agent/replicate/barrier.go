package replicate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The drain barrier.
//
// Events still in the kernel's fanotify/inotify queue, or in capture's
// buffer, are not yet journaled: a drain that only compares the journal's
// last and acknowledged numbers can report drained before them. The
// barrier orders after every earlier change on the file system: WaitDrained
// creates a uniquely named empty file in the source root and waits until
// capture delivers its creation. Both backends read one kernel queue in
// order (fanotify merges a later event into an earlier queued one, never
// the reverse), so every change made before the barrier has been journaled
// by then; WaitDrained then waits until the journal's last record at that
// moment is applied and acknowledged. The feeder recognises barrier names
// and never journals them. The name matches the engines' temporary-name
// pattern (".ferry.<name>.<16 hex digits>"), so a copy a concurrent rescan
// might make on the target is cleaned like a leftover temporary.

// barrierPrefix starts the name of every barrier file (in the root only).
const barrierPrefix = ".ferry.barrier."

// BarrierTimeout is how long WaitDrained waits for capture to deliver a
// barrier before it places a new one (the queue may have overflowed into a
// rescan, which drops events).
const BarrierTimeout = 3 * time.Second

// isBarrier reports whether rel names a barrier file.
func isBarrier(rel string) bool {
	return strings.HasPrefix(rel, barrierPrefix) && !strings.Contains(rel, "/")
}

// seenBarrier is called by the feeder, after journaling the batch that
// held the barrier's event, with the journal's last sequence number.
func (s *Source) seenBarrier(name string, last uint64) {
	s.mu.Lock()
	ch, ok := s.barriers[name]
	if ok {
		delete(s.barriers, name)
	}
	s.mu.Unlock()
	if ok {
		ch <- last
	}
}

// barrier places a barrier file and returns the journal sequence number
// that covers every change captured before it. The root's times are put
// back as they were, since the barrier's creation and removal touch them.
//
// Returns errNoBarrier when the file cannot be created (read-only root),
// or ctx's error.
func (s *Source) barrier(ctx context.Context) (uint64, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := barrierPrefix + hex.EncodeToString(rnd[:])
	ch := make(chan uint64, 1)
	s.mu.Lock()
	s.barriers[name] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.barriers, name)
		s.mu.Unlock()
	}()
	var st unix.Stat_t
	if err := unix.Stat(s.cfg.Root, &st); err != nil {
		return 0, fmt.Errorf("%w: %v", errNoBarrier, err)
	}
	restore := func() {
		ts := []unix.Timespec{st.Atim, st.Mtim}
		unix.UtimesNanoAt(unix.AT_FDCWD, s.cfg.Root, ts, 0)
	}
	p := filepath.Join(s.cfg.Root, name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNoBarrier, err)
	}
	f.Close()
	restore()
	defer func() {
		os.Remove(p)
		restore()
	}()
	t := time.NewTimer(BarrierTimeout)
	defer t.Stop()
	select {
	case seq := <-ch:
		return seq, nil
	case <-t.C:
		return 0, errBarrierLost
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.done:
		return 0, errors.New("replicate: sync stopped")
	}
}

var (
	errNoBarrier   = errors.New("replicate: cannot place a drain barrier")
	errBarrierLost = errors.New("replicate: drain barrier not seen by capture")
)
