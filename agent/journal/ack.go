package journal

import (
	"fmt"
	"os"
	"slices"
)

// Ack records that the target has applied every record up to seq durably.
// The acknowledgement is persisted before any segment is removed; then every
// segment wholly at or below seq (except the active one) is deleted. Acks
// at or below the current one are no-ops.
//
// Returns ErrAckBeyondDurable if seq was never durable, ErrClosed after
// Close, or an error if the acknowledgement cannot be persisted (then
// nothing is removed).
func (j *Journal) Ack(seq uint64) error {
	j.metaMu.Lock()
	defer j.metaMu.Unlock()
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	if seq <= j.acked {
		j.mu.Unlock()
		return nil
	}
	if seq > j.durable {
		durable := j.durable
		j.mu.Unlock()
		return fmt.Errorf("%w: ack %d, durable %d", ErrAckBeyondDurable, seq, durable)
	}
	m := meta{acked: seq, floor: j.floor}
	j.mu.Unlock()

	if err := writeMeta(j.dir, m); err != nil {
		return err
	}

	j.segMu.Lock()
	defer j.segMu.Unlock()
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	j.acked = max(j.acked, seq)
	var drop []*segment
	for len(j.segs) > 1 && j.segs[0].last <= j.acked {
		drop = append(drop, j.segs[0])
		j.disk -= j.segs[0].size
		j.segs = j.segs[1:]
	}
	j.unsynced = slices.DeleteFunc(j.unsynced, func(s *segment) bool { return slices.Contains(drop, s) })
	j.mu.Unlock()
	return removeSegments(drop)
}

func removeSegments(segs []*segment) error {
	var first error
	for _, s := range segs {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
		if err := os.Remove(s.path); err != nil && first == nil {
			first = fmt.Errorf("journal: remove segment: %w", err)
		}
	}
	return first
}

// Reset drops every record, for after a remirror: the acknowledged point
// moves to the last assigned sequence number and numbering continues after
// it. Records appended but not yet durable are dropped too.
//
// Returns ErrClosed after Close, or an error if the new state cannot be
// persisted (then nothing is removed).
func (j *Journal) Reset() error {
	j.metaMu.Lock()
	defer j.metaMu.Unlock()
	j.segMu.Lock()
	defer j.segMu.Unlock()
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	if err := writeMeta(j.dir, meta{acked: j.next - 1, floor: j.next}); err != nil {
		return err
	}
	j.floor = j.next
	old := j.segs
	seg, err := createSegment(j.dir, j.next)
	if err != nil {
		return err
	}
	if old[len(old)-1].first == seg.first {
		// The active segment was empty and had this very name: createSegment
		// truncated and reopened it, so only close the old handle.
		old[len(old)-1].f.Close()
		old = old[:len(old)-1]
	}
	j.segs = []*segment{seg}
	j.unsynced = nil
	j.disk = 0
	j.acked = j.next - 1
	j.written = j.next - 1
	j.durable = j.next - 1
	j.dirDirty = true
	close(j.durableCh)
	j.durableCh = make(chan struct{})
	j.poke(true)
	return removeSegments(old)
}
