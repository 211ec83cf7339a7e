package journal

import (
	"fmt"
	"sort"
	"time"
)

// DefaultReadMax is the batch size Read uses when max <= 0.
const DefaultReadMax = 1024

// Read returns up to max durable records with Seq >= from, in order. It
// returns an empty slice when none is durable yet (see Wait).
//
// Returns ErrGone if records at from were dropped (acknowledged, or before a
// Reset), ErrClosed after Close, or an error if a segment cannot be read.
func (j *Journal) Read(from uint64, max int) ([]Record, error) {
	return j.readTo(from, max, false)
}

// readTo reads up to the last durable record, or with written up to the
// last written one.
func (j *Journal) readTo(from uint64, max int, written bool) ([]Record, error) {
	if max <= 0 {
		max = DefaultReadMax
	}
	j.mu.Lock()
	upto := j.durable
	if written {
		upto = j.written
	}
	j.mu.Unlock()
	recs, _, err := j.read(from, max, upto)
	return recs, err
}

// read returns records in [from, upto], at most max, and the cum value of
// the first one.
func (j *Journal) read(from uint64, max int, upto uint64) ([]Record, int64, error) {
	j.segMu.RLock()
	defer j.segMu.RUnlock()
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, 0, ErrClosed
	}
	if from == 0 {
		from = 1
	}
	if from < j.segs[0].first {
		first := j.segs[0].first
		j.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: asked for %d, first available is %d", ErrGone, from, first)
	}
	if from > upto {
		j.mu.Unlock()
		return nil, 0, nil
	}
	// Snapshot what the scan needs; files stay open while segMu is held.
	i := sort.Search(len(j.segs), func(i int) bool { return j.segs[i].first > from }) - 1
	type span struct {
		s   *segment
		off int64
		end int64
	}
	var spans []span
	for k, s := range j.segs[i:] {
		off := int64(0)
		if k == 0 {
			off = s.offsetFor(from)
		}
		spans = append(spans, span{s, off, s.size})
		if s.last >= upto {
			break
		}
	}
	j.mu.Unlock()

	var out []Record
	var firstCum int64
	for _, sp := range spans {
		done := false
		_, err := sp.s.scan(sp.off, sp.end, func(r Record, cum, _ int64) bool {
			if r.Seq < from {
				return true
			}
			if r.Seq > upto || len(out) >= max {
				done = true
				return false
			}
			if len(out) == 0 {
				firstCum = cum
			}
			out = append(out, r)
			return true
		})
		if err != nil {
			return out, firstCum, fmt.Errorf("journal: read %s: %w", sp.s.path, err)
		}
		if done {
			break
		}
	}
	return out, firstCum, nil
}

// Stats reports the backlog. The oldest unacknowledged record is read from
// disk (one small read).
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	st := Stats{Last: j.next - 1, Acked: j.acked, Durable: j.durable, DiskBytes: j.disk}
	cum, written := j.cum, j.written
	j.mu.Unlock()
	if st.Last <= st.Acked {
		return st
	}
	st.BacklogRecords = st.Last - st.Acked
	recs, firstCum, err := j.read(st.Acked+1, 1, written)
	if err != nil || len(recs) == 0 {
		return st
	}
	st.BacklogBytes = cum - firstCum
	st.Oldest = time.Unix(0, recs[0].Time)
	st.Lag = time.Since(st.Oldest)
	return st
}
