package replicate_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
)

// TestAppendWithHiddenMiddleWrite: a large file grows and, at the same
// moment, a block far from its ends is overwritten. The append ships on a
// sampled check of the old prefix (only the new bytes cross), and the
// rolling sweep then finds the changed block and ships it as a delta: the
// drain waits for that, and the trees end identical with about the
// appended bytes and one block shipped.
func TestAppendWithHiddenMiddleWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	s, ctl, from, to := newLibrarySource(t, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	big := filepath.Join(src, "big")
	const size = 3 * replicate.SweepWindow // no block size change at +1 MiB
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A change in place first: the file ships as a delta of its whole
	// size, so what follows is a plain growth of known blocks.
	if _, err := f.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().ContentBytes
	// Beyond the first sweep window, away from the first and last blocks.
	mid := int64(2*replicate.SweepWindow + 12345)
	if _, err := f.WriteAt(bytes.Repeat([]byte("hidden change "), 300), mid); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data[:1<<20], size); err != nil {
		t.Fatal(err)
	}
	drainedIdentical(t, ctx, s, ctl, from, to, "after the drain")
	sent := s.Stats().ContentBytes - before
	t.Logf("append + hidden write: %d content bytes shipped", sent)
	if max := int64(1<<20 + 2*replicate.BlockSize); sent > max {
		t.Errorf("shipped %d bytes, want at most %d (the append and the changed block)", sent, max)
	}
	got, err := os.ReadFile(filepath.Join(dst, "big"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("target content differs from the source")
	}
}

// TestUnverifiedComparedStrictlyAfterRestart: a file listed as appended
// on a sampled check and not yet proven when the source agent died is
// compared strictly (MirrorStrict on its directory) by the restarted
// sync's resync, and the list is cleared after.
func TestUnverifiedComparedStrictlyAfterRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "db", "wal"), []byte("log"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	state := replicate.StateDir(dataDir, t.Name())
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	// What a killed source agent leaves: the list names db/wal.
	if err := os.WriteFile(filepath.Join(state, "unverified"), []byte("db/wal\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	strict := make(chan string, 4)
	s, _, _, _ := newLibrarySourceWith(t, src, dst, func(c *replicate.SourceConfig) {
		c.DataDir = dataDir
		c.MirrorStrict = func(ctx context.Context, sub string) (mirror.Summary, error) {
			strict <- sub
			return c.Mirror(ctx, sub)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case sub := <-strict:
		if sub != "db" {
			t.Errorf("strict compare of %q, want db", sub)
		}
	default:
		t.Fatal("the unverified file was not compared strictly after the restart")
	}
	if _, err := os.Stat(filepath.Join(state, "unverified")); !os.IsNotExist(err) {
		t.Errorf("the unverified list is still on disk after the strict compare (err %v)", err)
	}
}

// TestGrowthPastBlockCount: a file that grows past the block count of its
// block size ships with a larger block size, compared through the old
// hashes: only about the new bytes cross, not the whole file again.
func TestGrowthPastBlockCount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	s, ctl, from, to := newLibrarySource(t, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	big := filepath.Join(src, "log")
	chunk := make([]byte, 4<<20)
	for i := range chunk {
		chunk[i] = byte(i*13 + i>>9)
	}
	f, err := os.OpenFile(big, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(chunk); err != nil { // 4 MiB: 4 KiB blocks
		t.Fatal(err)
	}
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	ino := func() uint64 {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dst, "log"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	inoBefore := ino()
	before := s.Stats().ContentBytes
	const chunks = 65 // to 264 MiB: past 32 x 2048 blocks of 4 KiB
	for range chunks {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	sent := s.Stats().ContentBytes - before
	grown := int64(chunks * len(chunk))
	t.Logf("grew by %d bytes: %d content bytes shipped", grown, sent)
	if max := grown + 4*replicate.BlockSize; sent > max {
		t.Errorf("shipped %d bytes for %d appended, want at most %d", sent, grown, max)
	}
	drainedIdentical(t, ctx, s, ctl, from, to, "after the growth")
	// Appended in place all along: the target never copied the file to a
	// temporary (what re-blocking at once cost: a stall per few GB).
	if got := ino(); got != inoBefore {
		t.Errorf("the target's file was replaced (inode %d, was %d): want appends in place past the block count", got, inoBefore)
	}

	// The sweep switched the hashes to the larger block size: a change
	// in the middle ships one block of it (256 KiB for 264 MiB).
	before = s.Stats().ContentBytes
	mid, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mid.WriteAt([]byte("changed in the middle"), 100<<20+12345)
	mid.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	sent = s.Stats().ContentBytes - before
	t.Logf("a 21-byte change in the middle: %d content bytes shipped", sent)
	if sent > 2*replicate.BlockSize {
		t.Errorf("a 21-byte change shipped %d bytes, want at most 2 blocks of %d", sent, replicate.BlockSize)
	}
	drainedIdentical(t, ctx, s, ctl, from, to, "after the middle change")
}

// TestSweepOfAFileBeingAppendedIsPaced: while a large file keeps being
// appended to, no sweep cycle can prove its copy, so the source reads it
// again at most a window per ship and per sweepEvery (before, an idle
// shipper re-read the whole file back to back: gigabytes a second for a
// busy log); once the file is quiet a fresh cycle proves it and the trees
// are identical.
func TestSweepOfAFileBeingAppendedIsPaced(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	log := filepath.Join(src, "log")
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i*13 + i>>11)
	}
	if err := os.WriteFile(log, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, ctl, from, to := newLibrarySource(t, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := s.Stats().VerifyReadBytes
	const appends, every = 200, 10 * time.Millisecond
	line := bytes.Repeat([]byte("a log line of some length\n"), 40)
	for range appends {
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
		time.Sleep(every)
	}
	read := s.Stats().VerifyReadBytes - before
	// A window per record shipped (up to two per append: the write and
	// the close) and one per sweepEvery: at most ~480 windows of 2 MiB,
	// 250-370 measured. Re-reading the file back to back between ships
	// made 3.3 GB.
	limit := int64(24 * len(data))
	t.Logf("%d appends to a 64 MiB file in %v: the source read %d MiB again to verify (limit %d MiB)",
		appends, appends*every, read>>20, limit>>20)
	if read > limit {
		t.Errorf("the sweep read %d bytes while the file was appended to, want at most %d", read, limit)
	}
	drainedIdentical(t, ctx, s, ctl, from, to, "after the appends")
}
