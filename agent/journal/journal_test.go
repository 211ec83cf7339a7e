package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func open(t testing.TB, dir string, o Options) *Journal {
	t.Helper()
	o.Logger = quiet()
	j, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// rec builds a deterministic record for seq (names with odd bytes included).
func rec(seq uint64) Record {
	r := Record{Op: uint8(seq%6) + 1, Path: fmt.Sprintf("d%d/file \n\xff-%d", seq%7, seq), Size: int64(seq * 3), Dir: seq%5 == 0, Time: int64(seq) * 1000}
	if r.Op == OpRename {
		r.From = fmt.Sprintf("old/%d", seq)
	}
	return r
}

func sameRec(a, b Record) bool {
	return a.Seq == b.Seq && a.Time == b.Time && a.Op == b.Op && a.Path == b.Path && a.From == b.From && a.Dir == b.Dir && a.Size == b.Size
}

func appendN(t testing.TB, j *Journal, from, n uint64) {
	t.Helper()
	for s := from; s < from+n; {
		batch := min(n-(s-from), 37)
		recs := make([]Record, batch)
		for i := range recs {
			recs[i] = rec(s + uint64(i))
		}
		last, err := j.Append(recs...)
		if err != nil {
			t.Fatal(err)
		}
		if last != s+batch-1 {
			t.Fatalf("Append returned %d, want %d", last, s+batch-1)
		}
		s += batch
	}
}

// readAll reads every record from `from` and checks they are contiguous and
// equal to rec(seq).
func readAll(t testing.TB, j *Journal, from uint64) uint64 {
	t.Helper()
	next := from
	for {
		recs, err := j.Read(next, 100)
		if err != nil {
			t.Fatalf("Read(%d): %v", next, err)
		}
		if len(recs) == 0 {
			return next - 1
		}
		for _, r := range recs {
			want := rec(next)
			want.Seq = next
			if !sameRec(r, want) {
				t.Fatalf("record %d = %+v, want %+v", next, r, want)
			}
			next++
		}
	}
}

func segFiles(t testing.TB, dir string) (n int, bytes int64) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	for _, p := range m {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		bytes += fi.Size()
	}
	return len(m), bytes
}

func TestAppendReadAck(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 8 << 10})
	defer j.Close()
	appendN(t, j, 1, 1000)
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, j, 1); got != 1000 {
		t.Fatalf("read through %d, want 1000", got)
	}
	if got := readAll(t, j, 777); got != 1000 {
		t.Fatalf("read from the middle through %d", got)
	}
	segsBefore, _ := segFiles(t, dir)
	if segsBefore < 5 {
		t.Fatalf("only %d segments for 1000 records at 8 KiB", segsBefore)
	}
	if err := j.Ack(600); err != nil {
		t.Fatal(err)
	}
	segsAfter, _ := segFiles(t, dir)
	if segsAfter >= segsBefore {
		t.Fatalf("Ack(600) left %d of %d segments", segsAfter, segsBefore)
	}
	if _, err := j.Read(1, 10); !errors.Is(err, ErrGone) {
		t.Fatalf("Read(1) after ack: %v, want ErrGone", err)
	}
	if got := readAll(t, j, 601); got != 1000 {
		t.Fatalf("after ack read through %d", got)
	}
	if err := j.Ack(2000); !errors.Is(err, ErrAckBeyondDurable) {
		t.Fatalf("Ack beyond durable: %v", err)
	}
	if err := j.Ack(10); err != nil || j.Acked() != 600 {
		t.Fatalf("lower ack: %v, acked %d", err, j.Acked())
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10})
	appendN(t, j, 1, 500)
	must(t, j.Sync())
	must(t, j.Ack(450))
	must(t, j.Close())

	j = open(t, dir, Options{SegmentBytes: 4 << 10})
	if j.Last() != 500 || j.Acked() != 450 || j.Durable() != 500 {
		t.Fatalf("after restart last %d acked %d durable %d", j.Last(), j.Acked(), j.Durable())
	}
	if got := readAll(t, j, 451); got != 500 {
		t.Fatalf("read through %d", got)
	}
	appendN(t, j, 501, 10)
	must(t, j.Sync())
	must(t, j.Ack(510))
	must(t, j.Close())

	// Everything acknowledged: numbering still continues after 510.
	j = open(t, dir, Options{SegmentBytes: 4 << 10})
	defer j.Close()
	if j.Last() != 510 || j.Acked() != 510 {
		t.Fatalf("after full ack and restart: last %d acked %d", j.Last(), j.Acked())
	}
	appendN(t, j, 511, 5)
	must(t, j.Sync())
	if got := readAll(t, j, 511); got != 515 {
		t.Fatalf("read through %d", got)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	appendN(t, j, 1, 100)
	must(t, j.Close())
	_, size := segFiles(t, dir)
	seg := filepath.Join(dir, segName(1))

	// Half of record 101 at the end, as a kill during write leaves it.
	r := rec(101)
	r.Seq = 101
	frame := appendRecord(nil, &r, 0)
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write(frame[:len(frame)/2])
	must(t, err)
	must(t, f.Close())

	j = open(t, dir, Options{})
	if j.Last() != 100 {
		t.Fatalf("after torn tail last = %d, want 100", j.Last())
	}
	if _, s := segFiles(t, dir); s != size {
		t.Fatalf("segment is %d bytes after recovery, want %d", s, size)
	}
	if got := readAll(t, j, 1); got != 100 {
		t.Fatalf("read through %d", got)
	}
	appendN(t, j, 101, 1)
	must(t, j.Close())

	// A flipped byte inside the last record: it is dropped, nothing before.
	b, err := os.ReadFile(seg)
	must(t, err)
	b[len(b)-3] ^= 0x55
	must(t, os.WriteFile(seg, b, 0o600))
	j = open(t, dir, Options{})
	defer j.Close()
	if j.Last() != 100 {
		t.Fatalf("after corrupt last record last = %d, want 100", j.Last())
	}
	if got := readAll(t, j, 1); got != 100 {
		t.Fatalf("read through %d", got)
	}
}

// TestGapAfterTornSegment: a rotated segment lost its tail but the next one
// reached the disk; the records after the gap are dropped so the journal
// stays contiguous.
func TestGapAfterTornSegment(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SegmentBytes: 4 << 10})
	appendN(t, j, 1, 300)
	must(t, j.Close())
	m, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if len(m) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(m))
	}
	fi, err := os.Stat(m[0])
	must(t, err)
	must(t, os.Truncate(m[0], fi.Size()-10))
	j = open(t, dir, Options{SegmentBytes: 4 << 10})
	defer j.Close()
	last := readAll(t, j, 1)
	if j.Last() != last || last >= 300 {
		t.Fatalf("last %d, contiguous through %d", j.Last(), last)
	}
	if n, _ := segFiles(t, dir); n != 1 {
		t.Fatalf("%d segments left, want 1", n)
	}
	appendN(t, j, last+1, 3)
}

func TestFullAndReset(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 64 << 10
	j := open(t, dir, Options{MaxBytes: maxBytes, SegmentBytes: 8 << 10})
	defer j.Close()
	var last uint64
	for {
		r := rec(last + 1)
		s, err := j.Append(r)
		if errors.Is(err, ErrFull) {
			break
		}
		must(t, err)
		last = s
		if last > 10000 {
			t.Fatal("journal never reported ErrFull")
		}
	}
	if _, bytes := segFiles(t, dir); bytes > maxBytes {
		t.Fatalf("segments use %d bytes, bound %d", bytes, maxBytes)
	}
	if st := j.Stats(); st.DiskBytes > maxBytes || st.BacklogRecords != last {
		t.Fatalf("stats %+v", st)
	}
	// Acknowledging frees whole segments and appends work again.
	must(t, j.Sync())
	must(t, j.Ack(last))
	if _, err := j.Append(rec(last + 1)); err != nil {
		t.Fatalf("append after ack: %v", err)
	}
	last++
	// Fill again, then Reset: everything dropped, numbering continues.
	for {
		s, err := j.Append(rec(last + 1))
		if errors.Is(err, ErrFull) {
			break
		}
		must(t, err)
		last = s
	}
	must(t, j.Reset())
	if j.Last() != last || j.Acked() != last {
		t.Fatalf("after reset last %d acked %d, want %d", j.Last(), j.Acked(), last)
	}
	if n, bytes := segFiles(t, dir); n != 1 || bytes != 0 {
		t.Fatalf("after reset %d segments, %d bytes", n, bytes)
	}
	if _, err := j.Read(last, 1); !errors.Is(err, ErrGone) {
		t.Fatalf("read of dropped record: %v", err)
	}
	s, err := j.Append(rec(last + 1))
	if err != nil || s != last+1 {
		t.Fatalf("append after reset: %d, %v", s, err)
	}
	must(t, j.Close())
	j2 := open(t, dir, Options{MaxBytes: maxBytes})
	defer j2.Close()
	if j2.Last() != last+1 || j2.Acked() != last {
		t.Fatalf("after reset and restart last %d acked %d", j2.Last(), j2.Acked())
	}
}

func TestWaitAndStats(t *testing.T) {
	j := open(t, t.TempDir(), Options{SyncInterval: 3 * time.Millisecond})
	defer j.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := j.Wait(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on an empty journal: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- j.Wait(context.Background(), 0) }()
	captured := time.Now().Add(-time.Second).UnixNano()
	_, err := j.Append(Record{Op: OpModify, Path: "a", Size: 1000, Time: captured}, Record{Op: OpCreate, Path: "b", Size: 10})
	must(t, err)
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after a durable append")
	}
	if j.Durable() != 2 {
		t.Fatalf("durable %d", j.Durable())
	}
	st := j.Stats()
	wantBytes := int64(1000+10) + int64(2*(frameHeader+fixedPayload)+2)
	if st.BacklogRecords != 2 || st.BacklogBytes != wantBytes || st.Lag < time.Second || st.Oldest.UnixNano() != captured {
		t.Fatalf("stats %+v, want 2 records, %d bytes, lag >= 1s", st, wantBytes)
	}
	must(t, j.Ack(1))
	st = j.Stats()
	if st.BacklogRecords != 1 || st.BacklogBytes != 10+frameHeader+fixedPayload+1 || st.Lag > time.Second {
		t.Fatalf("stats after ack %+v", st)
	}
	must(t, j.Ack(2))
	if st = j.Stats(); st.BacklogRecords != 0 || st.BacklogBytes != 0 || st.Lag != 0 {
		t.Fatalf("stats with empty backlog %+v", st)
	}
}

// TestConcurrent runs appenders, a shipper (Wait, Read, Ack) and Stats at
// once; the shipper must see every record exactly once, in order.
func TestConcurrent(t *testing.T) {
	j := open(t, t.TempDir(), Options{SegmentBytes: 16 << 10, SyncInterval: time.Millisecond})
	defer j.Close()
	const writers, per = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if _, err := j.Append(Record{Op: OpModify, Path: fmt.Sprintf("w%d/%d", w, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[string]bool{}
	next := uint64(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for next <= writers*per {
		if err := j.Wait(ctx, next-1); err != nil {
			t.Fatal(err)
		}
		recs, err := j.Read(next, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Seq != next || seen[r.Path] {
				t.Fatalf("record %d (%s) out of order or repeated; want seq %d", r.Seq, r.Path, next)
			}
			seen[r.Path] = true
			next++
		}
		if len(recs) > 0 {
			must(t, j.Ack(next-1))
		}
		_ = j.Stats()
	}
	wg.Wait()
	if len(seen) != writers*per {
		t.Fatalf("saw %d records", len(seen))
	}
}

func TestClosed(t *testing.T) {
	j := open(t, t.TempDir(), Options{})
	must(t, j.Close())
	if _, err := j.Append(rec(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := j.Wait(context.Background(), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if _, err := j.Read(1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if err := j.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x"), Options{Logger: quiet()}); err != nil {
		t.Fatalf("Open creates its directory: %v", err)
	}
	if _, err := j.Append(Record{Path: strings.Repeat("x", MaxPathLen+1)}); err == nil {
		t.Fatal("oversized path accepted")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
