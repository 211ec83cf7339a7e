package replicate

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-migrate/ferry/agent/capture"
	"github.com/ferry-migrate/ferry/agent/journal"
)

// feed appends captured events to the journal. When the journal is full it
// resets it and signals a resync (state remirror_required): the resync
// covers every change the dropped records described, and the journal keeps
// recording changes made from then on.
func (s *Source) feed(ctx context.Context) {
	for batch := range s.w.Events() {
		recs := make([]journal.Record, 0, len(batch))
		var barriers []string
		for _, ev := range batch {
			if isBarrier(ev.Path) || isBarrier(ev.From) {
				// Drain barriers are never journaled (see barrier.go).
				if ev.Op != capture.OpDelete && isBarrier(ev.Path) {
					barriers = append(barriers, ev.Path)
				}
				continue
			}
			recs = append(recs, journal.Record{Op: uint8(ev.Op), Path: ev.Path, From: ev.From, Dir: ev.Dir,
				Time: ev.Time.UnixNano()})
		}
		s.mu.Lock()
		s.lastEvent = time.Now()
		s.mu.Unlock()
		var err error
		if len(recs) > 0 {
			_, err = s.j.Append(recs...)
		}
		if err != nil && ctx.Err() != nil {
			return
		}
		// Every event read before the barrier's is journaled now (or, on
		// error, covered by the resync the state below forces).
		for _, b := range barriers {
			s.seenBarrier(b, s.j.Last())
		}
		if err != nil {
			// Full (or failing): the changes are not journaled, so only a
			// resync can cover them.
			s.log.Warn("sync journal cannot take more records: remirror required", "err", err, "full", errors.Is(err, journal.ErrFull))
			s.setState(StateRemirrorRequired)
			select {
			case s.remirror <- struct{}{}:
			default:
			}
			// Reset is done by the shipper once it has stopped reading, so
			// nothing it reads vanishes under it; until then appends fail
			// and are covered by the resync.
		}
	}
}
