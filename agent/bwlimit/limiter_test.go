package bwlimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// testClock reads synctest's fake time, shifted to start at base: waiting
// costs no real time and the schedule sees the chosen wall-clock moment.
type testClock struct{ base, start time.Time }

func newTestClock(base time.Time) testClock { return testClock{base: base, start: time.Now()} }

func (c testClock) Now() time.Time                         { return c.base.Add(time.Since(c.start)) }
func (c testClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func mustSchedule(t *testing.T, spec string) *Schedule {
	t.Helper()
	s, err := ParseScheduleIn(spec, zone)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pump sends 64 KiB pieces through lim until ctx ends, counting them.
func pump(ctx context.Context, lim *Limiter, sent *atomic.Int64) {
	for ctx.Err() == nil {
		if lim.WaitN(ctx, ioChunk) == nil {
			sent.Add(ioChunk)
		}
	}
}

// near fails unless got is within [want-below, want+above].
func near(t *testing.T, what string, got, want, below, above int64) {
	t.Helper()
	if got < want-below || got > want+above {
		t.Errorf("%s: %d bytes (%.3f MiB), want %d (%.3f MiB) -%d/+%d", what, got, float64(got)/(1<<20), want, float64(want)/(1<<20), below, above)
	}
}

func TestRateSwitchesAtBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := newTestClock(at(time.Monday, 9, 59, 50))
		lim := NewLimiter(mustSchedule(t, "* 00:00-10:00 1M; * 10:00-24:00 4M"), clock)
		ctx, cancel := context.WithCancel(t.Context())
		var sent atomic.Int64
		go pump(ctx, lim, &sent)

		time.Sleep(10 * time.Second) // until 10:00:00 exactly
		synctest.Wait()
		atBoundary := sent.Load()
		burst := int64(burstFor(1 << 20))
		near(t, "10 s at 1M", atBoundary, burst+10<<20, 2*ioChunk, ioChunk)

		time.Sleep(5 * time.Second)
		synctest.Wait()
		near(t, "5 s at 4M after the boundary", sent.Load()-atBoundary, 20<<20, 2*ioChunk, 2*ioChunk)
		if got := clock.Now(); !got.Equal(at(time.Monday, 10, 0, 5)) {
			t.Errorf("clock at %v", got)
		}
		cancel()
	})
}

func TestForbiddenWindowPausesAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := newTestClock(at(time.Tuesday, 9, 59, 0))
		lim := NewLimiter(mustSchedule(t, "* 10:00-10:02 0; * 00:00-24:00 1M"), clock)
		ctx, cancel := context.WithCancel(t.Context())
		var sent atomic.Int64
		go pump(ctx, lim, &sent)

		time.Sleep(time.Minute) // 10:00:00, the window opens
		synctest.Wait()
		before := sent.Load()
		near(t, "60 s at 1M", before, int64(burstFor(1<<20))+60<<20, 2*ioChunk, ioChunk)
		if _, forbidden, until := lim.State(); !forbidden || !until.Equal(at(time.Tuesday, 10, 2, 0)) {
			t.Errorf("State: forbidden %v until %v", forbidden, until)
		}

		time.Sleep(119 * time.Second) // 10:01:59
		synctest.Wait()
		if got := sent.Load() - before; got > ioChunk {
			t.Errorf("%d bytes sent inside the forbidden window", got)
		}

		time.Sleep(31 * time.Second) // 10:02:30: resumed by itself
		synctest.Wait()
		near(t, "30 s at 1M after the window", sent.Load()-before, 30<<20, 2*ioChunk, 2*ioChunk)
		cancel()
	})
}

func TestWaitInForbiddenWindowEndsExactlyAtBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := newTestClock(at(time.Wednesday, 10, 0, 30))
		lim := NewLimiter(mustSchedule(t, "* 10:00-10:02 0"), clock)
		if err := lim.WaitN(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		if got := clock.Now(); !got.Equal(at(time.Wednesday, 10, 2, 0)) {
			t.Errorf("WaitN returned at %v, want 10:02:00", got)
		}
		// A context ending first wins.
		lim = NewLimiter(mustSchedule(t, "0"), clock)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := lim.WaitN(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitN in a forbidden window with a deadline: %v", err)
		}
	})
}

func TestSetScheduleAppliesLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := newTestClock(at(time.Thursday, 12, 0, 0))
		// A waiter deep in debt at 1M is released at once by "off".
		lim := NewLimiter(mustSchedule(t, "1M"), clock)
		var done atomic.Bool
		go func() {
			lim.WaitN(t.Context(), int(burstFor(1<<20))+20<<20) // ~20 s of debt
			done.Store(true)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if done.Load() {
			t.Fatal("20 MiB at 1M granted within 1 s")
		}
		lim.SetSchedule(nil)
		synctest.Wait() // no time passes
		if !done.Load() {
			t.Error("waiter not released by SetSchedule(nil)")
		}

		// A waiter in a forbidden window resumes when a rate is set.
		lim = NewLimiter(mustSchedule(t, "0"), clock)
		done.Store(false)
		go func() {
			lim.WaitN(t.Context(), 1000)
			done.Store(true)
		}()
		time.Sleep(time.Hour)
		synctest.Wait()
		if done.Load() {
			t.Fatal("transfer in a forbidden window")
		}
		lim.SetSchedule(mustSchedule(t, "4M"))
		synctest.Wait()
		if !done.Load() {
			t.Error("waiter not released when the forbidden schedule was replaced")
		}

		// A running transfer changes rate from 1M to 4M on the spot.
		lim = NewLimiter(mustSchedule(t, "1M"), clock)
		ctx, cancel := context.WithCancel(t.Context())
		var sent atomic.Int64
		go pump(ctx, lim, &sent)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		mark := sent.Load()
		lim.SetSchedule(mustSchedule(t, "4M"))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		near(t, "5 s after switching to 4M", sent.Load()-mark, 20<<20, 2*ioChunk, 2*ioChunk)
		cancel()
	})
}

func TestReaderWriterFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := newTestClock(at(time.Friday, 1, 0, 0))
		data := bytes.Repeat([]byte("ferry"), 2<<20) // 10 MiB
		lim := NewLimiter(mustSchedule(t, "2M"), clock)
		start := time.Now()
		var out bytes.Buffer
		if _, err := io.Copy(&out, Reader(t.Context(), bytes.NewReader(data), lim)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatal("Reader changed the data")
		}
		want := time.Duration(float64(len(data)-int(burstFor(2<<20))) / (2 << 20) * float64(time.Second))
		if got := time.Since(start); got < want-100*time.Millisecond || got > want+100*time.Millisecond {
			t.Errorf("Reader: 10 MiB at 2M took %v, want %v", got, want)
		}

		lim = NewLimiter(mustSchedule(t, "2M"), clock)
		start = time.Now()
		out.Reset()
		n, err := Writer(t.Context(), &out, lim).Write(data)
		if err != nil || n != len(data) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("Writer: %d, %v", n, err)
		}
		if got := time.Since(start); got < want-100*time.Millisecond || got > want+100*time.Millisecond {
			t.Errorf("Writer: 10 MiB at 2M took %v, want %v", got, want)
		}
	})
}

func TestNilLimiterAndUnlimited(t *testing.T) {
	var nilLim *Limiter
	if err := nilLim.WaitN(t.Context(), 1<<30); err != nil {
		t.Fatal(err)
	}
	lim := NewLimiter(nil, nil)
	start := time.Now()
	for range 1000 {
		if err := lim.WaitN(t.Context(), 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("unlimited limiter waited %v", d)
	}
}

// TestRealTime40MiBAt4M is the one real-time test: 40 MiB through a Writer
// at 4M must take 10 s ±10 %.
func TestRealTime40MiBAt4M(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s of real time; run without -short")
	}
	s, err := ParseSchedule("4M")
	if err != nil {
		t.Fatal(err)
	}
	lim := NewLimiter(s, nil)
	w := Writer(t.Context(), io.Discard, lim)
	buf := make([]byte, 1<<20)
	start := time.Now()
	for range 40 {
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	t.Logf("40 MiB at 4M took %v", elapsed)
	if elapsed < 9*time.Second || elapsed > 11*time.Second {
		t.Errorf("40 MiB at 4M took %v, want 10 s ±10%%", elapsed)
	}
}

func TestWaitersServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := newTestClock(at(time.Saturday, 3, 0, 0))
		lim := NewLimiter(mustSchedule(t, "1M"), clock)
		if err := lim.WaitN(t.Context(), int(burstFor(1<<20))); err != nil { // drain the bucket
			t.Fatal(err)
		}
		start := time.Now()
		released := make(chan string, 2)
		go func() {
			lim.WaitN(t.Context(), 1<<20)
			released <- "first " + time.Since(start).String()
		}()
		synctest.Wait() // the first has reserved
		go func() {
			lim.WaitN(t.Context(), 1<<20)
			released <- "second " + time.Since(start).String()
		}()
		if got := <-released; got != "first 1s" {
			t.Errorf("got %q, want the first waiter released after 1s", got)
		}
		if got := <-released; got != "second 2s" {
			t.Errorf("got %q, want the second waiter released after 2s", got)
		}
	})
}
