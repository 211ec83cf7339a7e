package replicate

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// intents is the target's log of temporary files it creates: the name is
// appended (no fsync: it guards against a killed agent, whose page cache
// survives) right after the temporary file is created, and at the next
// start every logged name still present is removed, so a kill -9 in the
// middle of a write leaves no stray temporary file in the tree.
type intents struct {
	f    *os.File
	size int64
}

// MaxIntentLog is the size at which the log is truncated between ops.
const MaxIntentLog = 1 << 20

// openIntents removes the temporaries an earlier run left and returns an
// empty log.
func openIntents(dir string, root *fsys.Root) (*intents, error) {
	p := filepath.Join(dir, "temps")
	if b, err := os.ReadFile(p); err == nil {
		for _, rel := range bytes.Split(b, []byte{0}) {
			r := string(rel)
			if r == "" || !strings.HasPrefix(path.Base(r), ".ferry.") {
				continue
			}
			root.Remove(r)
		}
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &intents{f: f}, nil
}

// note logs a temporary file's relative path.
func (in *intents) note(rel string) {
	if in == nil {
		return
	}
	n, _ := in.f.Write(append([]byte(rel), 0))
	in.size += int64(n)
}

// between is called when no temporary file is in flight.
func (in *intents) between() {
	if in != nil && in.size > MaxIntentLog {
		in.f.Truncate(0)
		in.size = 0
	}
}

func (in *intents) close() {
	if in != nil {
		in.f.Close()
	}
}
