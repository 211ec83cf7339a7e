package replicate

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/agent/journal"
)

// TestStartSeqAfterLostRecords: records ship before the journal flushes
// them, so after a crash of the source machine the target may report a
// sequence number the journal lost and has since given to a new record.
// Under another epoch, a number above what the journal recovered resumes
// shipping right after the recovered records (the new ones are not
// skipped); under the current epoch, or at or below the recovered records,
// the target's number stands.
func TestStartSeqAfterLostRecords(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]journal.Record, 10)
	for i := range recs {
		recs[i] = journal.Record{Op: journal.OpModify, Path: filepath.Join("d", string(rune('a'+i)))}
	}
	if _, err := j.Append(recs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// The reopened journal recovered 10 records; the target applied up to
	// 15 under the previous epoch (records the crash lost), and capture has
	// since appended 10 new records, numbered 11..20.
	j, err = journal.Open(dir, journal.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Append(recs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	cur, recovered := j.Opened()
	if recovered != 10 {
		t.Fatalf("recovered %d records, want 10", recovered)
	}
	s := &Source{j: j, log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, c := range []struct {
		name           string
		applied, epoch uint64
		want           uint64
	}{
		// In this order: each call acknowledges what the target applied.
		{"recovered numbers, earlier epoch", 7, cur + 1, 8},
		{"lost numbers, earlier epoch", 15, cur + 1, 11},
		{"lost numbers, unknown epoch", 15, 0, 11},
		{"this epoch", 15, cur, 16},
	} {
		got, err := s.startSeq(c.applied, c.epoch, true)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: resumes at %d, want %d", c.name, got, c.want)
		}
	}
}
