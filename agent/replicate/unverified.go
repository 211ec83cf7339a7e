package replicate

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// unverifiedSet is the durable list of files whose appends were shipped on
// a sampled check and not yet proven by a sweep (sweep.go). A path is
// written (and fsync'd) before its first sampled append ships; it is
// dropped lazily once proven, so the file may name more than needed,
// never less. After a restart of the source agent, or any resync, the
// listed files are compared strictly.
type unverifiedSet struct {
	file string

	mu      sync.Mutex
	live    map[string]bool // unverified now
	written map[string]bool // what the file on disk lists
}

func openUnverified(file string) (*unverifiedSet, error) {
	u := &unverifiedSet{file: file, live: map[string]bool{}, written: map[string]bool{}}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return u, nil
	}
	if err != nil {
		return nil, err
	}
	for p := range bytes.SplitSeq(b, []byte{0}) {
		if len(p) > 0 {
			u.written[string(p)] = true
			u.live[string(p)] = true
		}
	}
	return u, nil
}

// add makes p durable in the list (a no-op when the file lists it).
func (u *unverifiedSet) add(p string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.live[p] = true
	if u.written[p] {
		return nil
	}
	return u.writeLocked()
}

// done drops p: proven, deleted, or shipped in full. The file is rewritten
// lazily (by the next add), or removed when nothing is left.
func (u *unverifiedSet) done(p string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.live[p] {
		return
	}
	delete(u.live, p)
	if len(u.live) == 0 && len(u.written) > 0 {
		if err := os.Remove(u.file); err == nil || errors.Is(err, fs.ErrNotExist) {
			clear(u.written)
		}
	}
}

// take returns the listed paths and empties the list (the caller compares
// them strictly).
func (u *unverifiedSet) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	ps := make([]string, 0, len(u.live))
	for p := range u.live {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// clearAll forgets every path once they were compared strictly.
func (u *unverifiedSet) clearAll(compared []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range compared {
		delete(u.live, p)
	}
	if err := u.writeLocked(); err != nil {
		return // kept listed: compared again next time
	}
}

// writeLocked replaces the file with the live paths (NUL-separated: names
// are bytes), durably.
func (u *unverifiedSet) writeLocked() error {
	if len(u.live) == 0 {
		if err := os.Remove(u.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		clear(u.written)
		return nil
	}
	var b bytes.Buffer
	for p := range u.live {
		b.WriteString(p)
		b.WriteByte(0)
	}
	if err := fsys.WriteFileDurable(u.file, b.Bytes(), 0o600); err != nil {
		return err
	}
	clear(u.written)
	for p := range u.live {
		u.written[p] = true
	}
	return nil
}
