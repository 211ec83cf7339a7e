package replicate_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the workload's database engine
)

// TestSQLiteWorkloadBytes measures the content bytes the sync ships for a
// live SQLite writer in WAL mode (a ~5 MB database, one 1 KiB row
// committed every 20 ms for 5 s, then the writer closes: checkpoint, WAL
// and SHM deleted), checks the trees are identical right after the drain,
// and bounds the bytes shipped: the WAL ships as its appended frames, the
// database once (at the checkpoint; the sync has no block hashes of what
// the mirror shipped), so the total stays under twice WAL + database.
// Before block deltas for files from 16 KiB, every commit shipped the
// whole WAL: 216 MB for 239 commits here.
func TestSQLiteWorkloadBytes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	dbPath := filepath.Join(src, "app.db")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	row := strings.Repeat("r", 1024)
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	tx, _ := db.Begin()
	for range 4500 {
		tx.Exec(`INSERT INTO t (v) VALUES (?)`, row)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	s, ctl, from, to := newLibrarySource(t, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().ContentBytes
	start := time.Now()
	commits := 0
	for time.Since(start) < 5*time.Second {
		if _, err := db.Exec(`INSERT INTO t (v) VALUES (?)`, row); err != nil {
			t.Fatal(err)
		}
		commits++
		time.Sleep(20 * time.Millisecond)
	}
	walSize := int64(0)
	if fi, err := os.Stat(dbPath + "-wal"); err == nil {
		walSize = fi.Size()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	drainedIdentical(t, ctx, s, ctl, from, to, "after the writer")
	fi, _ := os.Stat(dbPath)
	sent := s.Stats().ContentBytes - before
	t.Logf("%d commits, db %d bytes, WAL reached %d bytes: %d content bytes shipped (%.1f KiB a commit)",
		commits, fi.Size(), walSize, sent, float64(sent)/1024/float64(commits))
	if limit := 2 * (walSize + fi.Size()); sent > limit {
		t.Errorf("shipped %d bytes, want at most %d", sent, limit)
	}
}

// TestDeltaUnderLiveWriter: a file rewritten page by page while its
// deltas ship (as a database is) never fails the target's verification —
// no session ends in a refusal and reconnect — and the trees are
// identical once the writer stops.
func TestDeltaUnderLiveWriter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify capture and owner fidelity")
	}
	src, dst := t.TempDir(), t.TempDir()
	p := filepath.Join(src, "pages")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	s, ctl, from, to := newLibrarySource(t, src, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	// One writer keeps the file open and writes pages; another opens,
	// writes and closes it, so capture reports changes all along.
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	writes := 0
	for start := time.Now(); time.Since(start) < 3*time.Second; writes++ {
		for i := range page {
			page[i] = byte(writes + i)
		}
		if _, err := f.WriteAt(page, int64(writes*7919%256)*4096); err != nil {
			t.Fatal(err)
		}
		if writes%8 == 0 {
			g, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			g.WriteAt(page[:100], int64(writes%256)*4096+17)
			g.Close()
			time.Sleep(200 * time.Microsecond)
		}
	}
	f.Close()
	drainedIdentical(t, ctx, s, ctl, from, to, "after the writer")
	st := s.Stats()
	t.Logf("%d page writes: %d content bytes shipped, %d reconnects", writes, st.ContentBytes, st.Reconnects)
	if st.Reconnects != 0 {
		t.Errorf("%d shipping sessions ended in an error (last: %s), want none", st.Reconnects, st.Err)
	}
}
