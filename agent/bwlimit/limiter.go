package bwlimit

import (
	"context"
	"sync"
	"time"
)

// Clock is the time source of a Limiter; tests inject their own.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives after d has elapsed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Burst bounds. The bucket holds a tenth of a second of the rate, so any
// 10 s window stays within ~1 % of the rate (plus one burst at the very
// start), bounded by these limits.
const (
	MinBurst = 64 << 10
	MaxBurst = 4 << 20
)

// maxWait bounds one sleep, so that a wall-clock jump (NTP, suspend) is
// noticed within this time even while waiting for a far window boundary.
const maxWait = time.Minute

// Limiter is a token bucket whose rate follows a Schedule. It is safe for
// concurrent use; concurrent waiters share the rate. A nil *Limiter does
// not limit.
type Limiter struct {
	clock Clock

	// Guarded by mu.
	mu        sync.Mutex
	sched     *Schedule
	rate      int64     // bytes per second; 0 = unlimited
	forbidden bool      // transfers forbidden now
	next      time.Time // when rate/forbidden change next; zero = never
	burst     float64
	// The bucket as two running totals: bytes the rate has made available
	// (capacity) and bytes requested (reserved). tokens = capacity -
	// reserved; a waiter whose request ends at reserved position p may go
	// once capacity >= p, so waiters are served in arrival order.
	capacity float64
	reserved float64
	last     time.Time
	changed  chan struct{} // closed and replaced by SetSchedule
}

// NewLimiter returns a Limiter following s (nil = unlimited), timed by
// clock (nil = the real clock). The bucket starts full.
func NewLimiter(s *Schedule, clock Clock) *Limiter {
	if clock == nil {
		clock = realClock{}
	}
	l := &Limiter{clock: clock, sched: s, changed: make(chan struct{})}
	now := clock.Now()
	l.last = now
	l.loadLocked(now)
	l.setTokensLocked(l.burst)
	return l
}

// SetSchedule replaces the schedule; running and future waiters follow the
// new one at once. s == nil removes the limit.
func (l *Limiter) SetSchedule(s *Schedule) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.advanceLocked(now)
	l.sched = s
	l.loadLocked(now)
	close(l.changed)
	l.changed = make(chan struct{})
}

// Schedule returns the current schedule.
func (l *Limiter) Schedule() *Schedule {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sched
}

// State returns the limit in force now: bytesPerSec (0 = unlimited),
// whether transfers are forbidden, and when that changes next (zero =
// never). For progress displays ("paused until 18:00").
func (l *Limiter) State() (bytesPerSec int64, forbidden bool, until time.Time) {
	if l == nil {
		return Unlimited, false, time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked(l.clock.Now())
	return l.rate, l.forbidden, l.next
}

// WaitN blocks until n bytes may be sent: immediately when unlimited, after
// the bucket has refilled otherwise, and — in a forbidden window — until
// the window ends or SetSchedule lifts it. n may exceed the burst: the
// request goes once the rate has covered it. Waiters are served in arrival
// order. Returns ctx.Err() if
// ctx ends while waiting; the n bytes are then not counted. A nil Limiter
// returns nil at once.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	var pos float64 // this request's end position; 0 = not yet reserved
	for {
		now := l.clock.Now()
		l.advanceLocked(now)
		var wait time.Duration
		switch {
		case l.forbidden:
			wait = maxWait
			if !l.next.IsZero() {
				wait = l.next.Sub(now)
			}
		case l.rate == Unlimited:
			l.mu.Unlock()
			return nil
		default:
			if pos == 0 {
				l.reserved += float64(n)
				pos = l.reserved
			}
			if l.capacity >= pos {
				l.mu.Unlock()
				return nil
			}
			wait = time.Duration((pos - l.capacity) / float64(l.rate) * float64(time.Second))
			if !l.next.IsZero() {
				wait = min(wait, l.next.Sub(now))
			}
		}
		wait = max(min(wait, maxWait), time.Nanosecond)
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			if pos != 0 {
				// Give the bytes back: later waiters move up.
				l.mu.Lock()
				l.capacity += float64(n)
				l.mu.Unlock()
			}
			return ctx.Err()
		case <-l.clock.After(wait):
		case <-changed:
		}
		l.mu.Lock()
	}
}

// advanceLocked refills the bucket up to now, switching rate at every
// schedule boundary on the way.
func (l *Limiter) advanceLocked(now time.Time) {
	for {
		end := now
		crossed := !l.next.IsZero() && !now.Before(l.next)
		if crossed {
			end = l.next
		}
		if end.After(l.last) {
			if l.rate != Unlimited && !l.forbidden {
				l.capacity = min(l.capacity+float64(l.rate)*end.Sub(l.last).Seconds(), l.reserved+l.burst)
			}
			l.last = end
		} else if now.Before(l.last) {
			// The wall clock went back: start counting afresh and re-read
			// the schedule, which may now be in an earlier window.
			l.last = now
			l.loadLocked(now)
			return
		}
		if !crossed {
			return
		}
		l.loadLocked(end)
	}
}

// loadLocked reads the schedule's state at t.
func (l *Limiter) loadLocked(t time.Time) {
	wasUnlimited := l.rate == Unlimited && !l.forbidden
	l.rate, l.forbidden, l.next = l.sched.RateAt(t)
	if !l.next.IsZero() && !l.next.After(t) {
		l.next = time.Time{} // defensive: never loop on a boundary in the past
	}
	l.burst = burstFor(l.rate)
	switch {
	case l.rate == Unlimited && !l.forbidden, wasUnlimited:
		l.setTokensLocked(l.burst)
	default:
		l.capacity = min(l.capacity, l.reserved+l.burst)
	}
}

// setTokensLocked fills the bucket to tokens, clearing any debt (waiters
// already reserved are released).
func (l *Limiter) setTokensLocked(tokens float64) {
	l.capacity = l.reserved + tokens
}

func burstFor(bytesPerSec int64) float64 {
	return float64(min(max(bytesPerSec/10, MinBurst), MaxBurst))
}
