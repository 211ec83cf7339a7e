package journal

import (
	"testing"

	"github.com/ferry-migrate/ferry/agent/capture"
)

// The journal stores capture's Op values; Coalesce relies on their meaning.
func TestOpsMatchCapture(t *testing.T) {
	for _, c := range []struct {
		j uint8
		c capture.Op
	}{
		{OpCreate, capture.OpCreate}, {OpModify, capture.OpModify}, {OpAttrib, capture.OpAttrib},
		{OpDelete, capture.OpDelete}, {OpRename, capture.OpRename}, {OpRescan, capture.OpRescan},
	} {
		if c.j != uint8(c.c) {
			t.Errorf("journal op %d != capture op %v (%d)", c.j, c.c, uint8(c.c))
		}
	}
}
