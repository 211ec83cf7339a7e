package replicate

import (
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/capture"
	"github.com/ferry-migrate/ferry/agent/journal"
)

// TestCoalesceWaitHoldsOnlyHotFiles: a batch is held for coalescing only
// when every content write in it is to a file written within HotWindow
// before; a write to any other file ships the batch at once.
func TestCoalesceWaitHoldsOnlyHotFiles(t *testing.T) {
	now := time.Now()
	t0 := now.Add(-2 * time.Millisecond).UnixNano()
	mod := func(p string) journal.Record { return journal.Record{Op: uint8(capture.OpModify), Path: p, Time: t0} }
	hot := map[string]int64{"db-wal": t0 - int64(10*time.Millisecond), "old": t0 - int64(time.Second)}
	cases := []struct {
		name string
		recs []journal.Record
		hold bool
	}{
		{"hot file", []journal.Record{mod("db-wal")}, true},
		{"hot file and a cold one", []journal.Record{mod("db-wal"), mod("probe")}, false},
		{"file written long ago", []journal.Record{mod("old")}, false},
		{"never written", []journal.Record{mod("new")}, false},
		{"no content write", []journal.Record{{Op: uint8(capture.OpCreate), Path: "d", Time: t0}}, false},
	}
	for _, c := range cases {
		w := coalesceWait(c.recs, now, hot)
		if (w > 0) != c.hold || w > CoalesceDelay {
			t.Errorf("%s: wait %s, want hold %v (at most %s)", c.name, w, c.hold, CoalesceDelay)
		}
	}
}
