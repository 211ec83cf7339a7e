package journal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReadWrittenAheadOfFlush: with the group commit held back, written
// records are readable through ReadWritten (not Read), WaitWritten sees
// them, and the journal refuses acknowledgements of them until they are
// durable.
func TestReadWrittenAheadOfFlush(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{SyncInterval: time.Hour})
	defer j.Close()
	appendN(t, j, 1, 5)
	if recs, err := j.Read(1, 10); err != nil || len(recs) != 0 {
		t.Fatalf("Read before the flush = %d records, %v; want none", len(recs), err)
	}
	recs, err := j.ReadWritten(1, 10)
	if err != nil || len(recs) != 5 {
		t.Fatalf("ReadWritten = %d records, %v; want 5", len(recs), err)
	}
	for i, r := range recs {
		want := rec(uint64(i + 1))
		want.Seq = uint64(i + 1)
		if !sameRec(r, want) {
			t.Fatalf("record %d = %+v, want %+v", i+1, r, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := j.WaitWritten(ctx, 4); err != nil {
		t.Fatalf("WaitWritten(4) with 5 written: %v", err)
	}
	if err := j.WaitWritten(ctx, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitWritten(5) with 5 written = %v, want a timeout", err)
	}
	if err := j.Ack(3); !errors.Is(err, ErrAckBeyondDurable) {
		t.Fatalf("Ack of a record not durable = %v, want ErrAckBeyondDurable", err)
	}
	// A writer appending later wakes a waiter.
	done := make(chan error, 1)
	go func() { done <- j.WaitWritten(context.Background(), 5) }()
	time.Sleep(10 * time.Millisecond)
	appendN(t, j, 6, 1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitWritten did not wake on an append")
	}
	must(t, j.Sync())
	must(t, j.Ack(3))
}

// TestOpenedEpochs: every Open has a new epoch and reports the last record
// it recovered; after a crash of the machine lost the unflushed tail, that
// is below what a reader may have shipped, and new records reuse the lost
// numbers.
func TestOpenedEpochs(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	e1, last := j.Opened()
	if e1 == 0 || last != 0 {
		t.Fatalf("fresh journal: Opened = %d, %d; want a nonzero epoch and 0", e1, last)
	}
	appendN(t, j, 1, 100)
	must(t, j.Close())
	seg := filepath.Join(dir, segName(1))
	full, err := os.ReadFile(seg)
	must(t, err)

	j = open(t, dir, Options{})
	e2, last := j.Opened()
	if e2 == e1 || e2 == 0 || last != 100 {
		t.Fatalf("reopened: Opened = %d, %d; want a new nonzero epoch (was %d) and 100", e2, last, e1)
	}
	must(t, j.Close())

	// A power loss took the last 40 records (never flushed): cut the
	// segment at record 61.
	cut := offsetOf(t, full, 61)
	must(t, os.WriteFile(seg, full[:cut], 0o600))
	j = open(t, dir, Options{})
	defer j.Close()
	e3, last := j.Opened()
	if e3 == e2 || last != 60 {
		t.Fatalf("after the lost tail: Opened = %d, %d; want a new epoch and 60", e3, last)
	}
	if n, err := j.Append(rec(61)); err != nil || n != 61 {
		t.Fatalf("next record numbered %d (%v), want 61 (the lost number again)", n, err)
	}
}

// offsetOf returns the byte offset of record seq in segment bytes b.
func offsetOf(t *testing.T, b []byte, seq uint64) int {
	t.Helper()
	off := 0
	for n := uint64(1); n < seq; n++ {
		r := rec(n)
		r.Seq = n
		off += len(appendRecord(nil, &r, 0))
	}
	if off >= len(b) {
		t.Fatalf("record %d lies past the segment (%d bytes)", seq, len(b))
	}
	return off
}
