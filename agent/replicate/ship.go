package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-migrate/ferry/agent/bwlimit"
	"github.com/ferry-migrate/ferry/agent/capture"
	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/journal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// ReadBatch is how many journal records the shipper reads (and coalesces)
// at a time.
const ReadBatch = 512

type inoKey struct{ dev, ino uint64 }

// shipper ships journal records over one connection at a time. Its caches
// describe what the target holds after applying what was shipped, so they
// are only trusted within one connection (hashes) or re-checked at use
// (links).
type shipper struct {
	s      *Source
	hashes map[string]fileHashes
	// unproven holds the paths of hashes whose sweep is running.
	unproven map[string]bool
	links    map[inoKey]string
	// names maps shipped names of multiply linked files to their inode.
	names  map[string]inoKey
	groups map[inoKey]map[string]bool // the same, by inode
	// walked holds the names findLinks' walks saw, by inode number, so a
	// later lookup need not walk the tree again (links.go).
	walked      map[uint64][]string
	walkedNames int
	afterMirror bool
	progressed  atomic.Bool      // set by the ack reader
	lim         *bwlimit.Limiter // the Source's
	root        *fsys.Root
	buf         []byte
	fullSeq     uint64 // first record of the last sessions, and how often
	fullTries   int    // a session started there
	// skipped holds vanished paths (and the seq of the rename that shipped
	// them, 0 while none did) whose records were skipped because a
	// later rename moves them away; that rename ships their content.
	skipped map[string]uint64
	peek    []journal.Record // records after the batch, for renamedLater
	peeked  bool
	swept   time.Time // last sweep step under load
	// hot holds the capture time of the last content write of recently
	// written paths (see coalesceWait).
	hot map[string]int64
	// pendingHashes collects block hashes while a large file streams.
	pendingHashes []byte

	mu      sync.Mutex // guards ackSeq, sentSeq
	ackSeq  uint64
	sentSeq uint64
}

// session runs one connection: attach, resume from the target's applied
// number, ship until an error, a pause or a resync.
func (sh *shipper) session(ctx context.Context) error {
	s := sh.s
	sh.progressed.Store(false)
	c, acc, err := s.dialTarget(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	s.cur.Store(c)
	defer func() {
		s.cur.Store(nil)
		_, enc := c.PayloadBytes()
		s.wireBytes.Add(enc)
	}()
	next, err := s.startSeq(acc.Applied, acc.Epoch, sh.afterMirror)
	if err != nil {
		return err
	}
	sh.afterMirror = false
	fullSeq := next
	firstFull := true
	if fullSeq == sh.fullSeq {
		sh.fullTries++
		if sh.fullTries >= 3 {
			// Even in full the target cannot apply it: resync.
			sh.fullTries = 0
			return fmt.Errorf("%w: record %d fails on the target", errRemirror, fullSeq)
		}
	} else {
		sh.fullSeq, sh.fullTries = fullSeq, 0
	}
	sh.dropUnverified()
	sh.clearHashes()
	if sh.skipped == nil {
		// Kept across reconnects: the records that skipped these paths may
		// be acknowledged already, and their renames not.
		sh.skipped = map[string]uint64{}
	}
	if sh.root == nil {
		if sh.root, err = fsys.OpenRoot(s.cfg.Root); err != nil {
			return err
		}
	}
	if sh.buf == nil {
		sh.buf = make([]byte, BlockSize)
	}
	sh.lim = s.lim
	sh.mu.Lock()
	sh.ackSeq, sh.sentSeq = next-1, next-1
	sh.mu.Unlock()

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go sh.readAcks(sctx, c, cancel)
	for {
		if err := context.Cause(sctx); err != nil {
			return err
		}
		select {
		case <-s.remirror:
			return errRemirror
		default:
		}
		s.mu.Lock()
		paused := s.paused
		s.mu.Unlock()
		if paused {
			c.Flush()
			return errPaused
		}
		// Records ship as soon as they are written, before the journal's
		// flush: a busy disk can hold an fdatasync for a tenth of a second
		// (see startSeq for a crash of the machine).
		recs, err := s.j.ReadWritten(next, ReadBatch)
		if errors.Is(err, journal.ErrGone) {
			return fmt.Errorf("%w: %v", errRemirror, err)
		}
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			if err := c.Flush(); err != nil {
				return err
			}
			if s.settledAfterRecovery(sh) {
				return fmt.Errorf("%w: check after a recovery", errRemirror)
			}
			sh.sweepIdle(next, 0)
			wctx, wcancel := context.WithTimeout(sctx, 100*time.Millisecond)
			err := s.j.WaitWritten(wctx, next-1)
			wcancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && sctx.Err() == nil {
				return err
			}
			continue
		}
		if wait := coalesceWait(recs, time.Now(), sh.hot); wait > 0 {
			// Content is being written right now: let the writes of the
			// next moment join this batch and ship once; a change to any
			// other file that arrives meanwhile ends the wait.
			recs = sh.holdFor(sctx, next, recs, time.Now().Add(wait))
		}
		last := recs[len(recs)-1].Seq
		sh.noteWrites(recs)
		sh.peeked = false
		recs = journal.Coalesce(recs)
		if len(sh.skipped) > 100_000 {
			clear(sh.skipped) // bound it; renames then need a round trip
		}
		sh.mu.Lock()
		acked := sh.ackSeq
		sh.mu.Unlock()
		for p, by := range sh.skipped {
			if by != 0 && by <= acked {
				delete(sh.skipped, p)
			}
		}
		skipped := sh.skipped
		for i := range recs {
			// The first record shipped after a reconnect ships in full.
			full := firstFull
			firstFull = false
			if err := sh.ship(sctx, c, recs, i, full, skipped); err != nil {
				if cause := context.Cause(sctx); cause != nil {
					return cause
				}
				return err
			}
			sh.mu.Lock()
			sh.sentSeq = recs[i].Seq
			sh.mu.Unlock()
		}
		if err := c.Flush(); err != nil {
			return err
		}
		next = last + 1
		if time.Since(sh.swept) >= sweepEvery {
			// Under a steady load the shipper is never idle: keep the
			// sweeps of quiet unverified files going.
			sh.swept = time.Now()
			sh.sweepIdle(next, 1)
		}
	}
}

// readAcks acknowledges records in the journal as the target reports them
// and ends the session (cancel) when the connection fails or the target
// reports an error.
func (sh *shipper) readAcks(ctx context.Context, c *wire.Conn, cancel context.CancelCauseFunc) {
	s := sh.s
	for {
		m, err := c.ReadMsg()
		if err != nil {
			cancel(fmt.Errorf("sync connection: %w", err))
			return
		}
		switch m := m.(type) {
		case *wire.SyncAck:
			sh.mu.Lock()
			prev := sh.ackSeq
			if m.Seq > prev {
				sh.ackSeq = m.Seq
			}
			sh.mu.Unlock()
			if m.Seq > prev {
				// The journal takes acknowledgements of durable records
				// only; the flush of a record shipped ahead of it is a
				// moment away.
				if err := s.j.Wait(ctx, m.Seq-1); err != nil {
					cancel(fmt.Errorf("journal: %w", err))
					return
				}
				if err := s.j.Ack(m.Seq); err != nil {
					cancel(fmt.Errorf("journal ack: %w", err))
					return
				}
				s.acked(int64(m.Seq - prev))
				sh.progressed.Store(true)
				s.setErr(nil)
			}
		case *wire.Error:
			err := m.Err()
			if errors.Is(err, wire.ErrNotFound) {
				err = fmt.Errorf("%w: %w", errRefused, err)
			}
			cancel(fmt.Errorf("target: %w", err))
			return
		default:
			cancel(fmt.Errorf("%w: unexpected %s from the target", wire.ErrProtocol, m.Kind()))
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// waitAcked waits until the target acknowledged every record sent.
func (sh *shipper) waitAcked(ctx context.Context, c *wire.Conn) error {
	if err := c.Flush(); err != nil {
		return err
	}
	for {
		sh.mu.Lock()
		done := sh.ackSeq >= sh.sentSeq
		sh.mu.Unlock()
		if done {
			return nil
		}
		if err := context.Cause(ctx); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// CoalesceDelay is how long the shipper lets a batch of content writes
// younger than it wait for more writes to the same files, so a steady
// stream of small commits (a database and its WAL) ships once per window
// instead of once per commit. It bounds the lag it adds. Only batches
// whose every content write is to a hot file wait: a write to a file not
// written within HotWindow before ships at once.
const CoalesceDelay = 20 * time.Millisecond

// HotWindow is how recently a file must have been written before for its
// next write to be held for coalescing.
const HotWindow = 50 * time.Millisecond

// maxHot bounds the paths kept as recently written.
const maxHot = 10_000

// coalesceWait is how long to hold recs before shipping them: until the
// newest is CoalesceDelay old, when the batch is not full and every content
// write in it is to a file written within HotWindow before (hot: capture
// times of the last writes by path); else 0.
func coalesceWait(recs []journal.Record, now time.Time, hot map[string]int64) time.Duration {
	if len(recs) == 0 || len(recs) >= ReadBatch {
		return 0
	}
	modify := false
	for _, r := range recs {
		if capture.Op(r.Op) != capture.OpModify {
			continue
		}
		modify = true
		if prev, ok := hot[r.Path]; !ok || r.Time-prev > int64(HotWindow) {
			return 0 // a cold file: ship now
		}
	}
	if !modify {
		return 0
	}
	age := now.Sub(time.Unix(0, recs[len(recs)-1].Time))
	return min(max(CoalesceDelay-age, 0), CoalesceDelay)
}

// holdFor holds the batch recs (read from next) until deadline, reading
// what joins it as the journal writes it; it returns early with the longer
// batch when a record that coalesceWait would not hold (a write to a cold
// file, a create, a rename...) joins, or the batch is full.
func (sh *shipper) holdFor(ctx context.Context, next uint64, recs []journal.Record, deadline time.Time) []journal.Record {
	for {
		wctx, cancel := context.WithDeadline(ctx, deadline)
		err := sh.s.j.WaitWritten(wctx, recs[len(recs)-1].Seq)
		cancel()
		if err != nil {
			return recs // the deadline; the journal's errors surface at the next read
		}
		more, err := sh.s.j.ReadWritten(next, ReadBatch)
		if err != nil || len(more) <= len(recs) {
			return recs // nothing more to read after all (a reset journal): ship now
		}
		added := more[len(recs):]
		recs = more
		if len(recs) >= ReadBatch || coalesceWait(added, time.Now(), sh.hot) == 0 {
			return recs
		}
	}
}

// noteWrites records the capture times of the content writes in recs.
func (sh *shipper) noteWrites(recs []journal.Record) {
	if sh.hot == nil || len(sh.hot) > maxHot {
		sh.hot = map[string]int64{}
	}
	for _, r := range recs {
		if capture.Op(r.Op) == capture.OpModify {
			sh.hot[r.Path] = r.Time
		}
	}
}
