package capture

import (
	"context"
	"sync"
	"time"
)

// queue decouples the kernel reader from the consumer: the reader never
// blocks on a slow consumer (so the kernel queue keeps draining), and the
// consumer receives everything buffered so far as one batch.
type queue struct {
	out   chan []Event
	limit int

	mu sync.Mutex // guards the fields below
	// pending holds events not yet handed to the consumer, in order.
	pending []Event
	// overflowed is set once pending was collapsed into a root rescan.
	overflowed bool
	signal     chan struct{} // capacity 1; poked when pending grows
}

func newQueue(limit int) *queue {
	return &queue{out: make(chan []Event), limit: limit, signal: make(chan struct{}, 1)}
}

// push appends events. When the buffer would exceed its limit, everything
// buffered is replaced by one OpRescan of the root: the consumer must re-read
// the whole tree anyway, so later events until the next delivery are dropped.
func (q *queue) push(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	switch {
	case q.overflowed:
	case len(q.pending)+len(evs) > q.limit:
		q.pending = append(q.pending[:0], Event{Op: OpRescan, Dir: true, Time: time.Now()})
		q.overflowed = true
	default:
		q.pending = append(q.pending, evs...)
	}
	q.mu.Unlock()
	q.wake()
}

func (q *queue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take returns and clears the buffered events.
func (q *queue) take() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.pending
	q.pending = nil
	q.overflowed = false
	return b
}

// deliver hands batches to the consumer until ctx ends, then closes out.
func (q *queue) deliver(ctx context.Context) {
	defer close(q.out)
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.signal:
		}
		b := q.take()
		if len(b) == 0 {
			continue
		}
		select {
		case q.out <- b:
		case <-ctx.Done():
			return
		}
	}
}
