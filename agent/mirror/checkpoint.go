package mirror

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// partial is the checkpoint of a large file in progress on the target: its
// temporary file holds the source's content up to Offset (written before the
// record; verified by block hashes before it is trusted), for the source
// version (Size, MtimeNs).
type partial struct {
	Path    string `json:"path"`
	TmpRel  string `json:"tmp"`
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
}

// checkpoints is the receiver's durable state for one job, under
// DATADIR/jobs/<hash of job id>/partial/. Safe for concurrent use.
type checkpoints struct {
	dir string // "" disables checkpoints

	mu    sync.Mutex
	byRel map[string]partial // guarded by mu
}

// JobDir returns the directory of job id under an agent's data dir.
func JobDir(dataDir, jobID string) string {
	h := sha256.Sum256([]byte(jobID))
	return filepath.Join(dataDir, "jobs", hex.EncodeToString(h[:12]))
}

// openCheckpoints loads the checkpoints of a job (creating the directory).
func openCheckpoints(dataDir, jobID string) (*checkpoints, error) {
	c := &checkpoints{byRel: map[string]partial{}}
	if dataDir == "" {
		return c, nil
	}
	jd := JobDir(dataDir, jobID)
	c.dir = filepath.Join(jd, "partial")
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint dir: %w", err)
	}
	info, _ := json.Marshal(map[string]string{"job_id": jobID})
	_ = os.WriteFile(filepath.Join(jd, "job.json"), info, 0o600)
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint dir: %w", err)
	}
	for _, de := range ents {
		if !strings.HasSuffix(de.Name(), ".json") {
			os.Remove(filepath.Join(c.dir, de.Name())) // a torn temporary
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.dir, de.Name()))
		var p partial
		if err != nil || json.Unmarshal(b, &p) != nil || p.Path == "" {
			os.Remove(filepath.Join(c.dir, de.Name()))
			continue
		}
		c.byRel[p.Path] = p
	}
	return c, nil
}

func (c *checkpoints) file(rel string) string {
	h := sha256.Sum256([]byte(rel))
	return filepath.Join(c.dir, hex.EncodeToString(h[:16])+".json")
}

// get returns the checkpoint of rel.
func (c *checkpoints) get(rel string) (partial, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.byRel[rel]
	return p, ok
}

// all returns every checkpoint.
func (c *checkpoints) all() []partial {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]partial, 0, len(c.byRel))
	for _, p := range c.byRel {
		out = append(out, p)
	}
	return out
}

// save records p so that it survives the death of the agent process:
// written to a temporary file and renamed (no fsync: see maybeCheckpoint
// for why a lost record or a record ahead of the disk is safe).
func (c *checkpoints) save(p partial) error {
	c.mu.Lock()
	c.byRel[p.Path] = p
	c.mu.Unlock()
	if c.dir == "" {
		return nil
	}
	b, _ := json.Marshal(p)
	name := c.file(p.Path)
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// remove forgets the checkpoint of rel.
func (c *checkpoints) remove(rel string) {
	c.mu.Lock()
	_, ok := c.byRel[rel]
	delete(c.byRel, rel)
	c.mu.Unlock()
	if ok && c.dir != "" {
		if err := os.Remove(c.file(rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = err // a stale record is re-validated against the source next run
		}
	}
}

// cleanFile marks a job whose last run on this agent completed: no
// temporary of it can be left in the tree.
func (c *checkpoints) cleanFile() string { return filepath.Join(filepath.Dir(c.dir), "clean") }

// takeClean reports whether the previous run completed, and removes the
// mark (a run that dies now leaves none).
func (c *checkpoints) takeClean() bool {
	if c.dir == "" {
		return false
	}
	err := os.Remove(c.cleanFile())
	return err == nil
}

// markClean records that this run completed with no partial file left.
func (c *checkpoints) markClean() {
	if c.dir != "" && len(c.all()) == 0 {
		os.WriteFile(c.cleanFile(), nil, 0o600)
	}
}

// tmpInUse reports whether rel is the temporary file of a checkpoint.
func (c *checkpoints) tmpInUse(rel string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.byRel {
		if p.TmpRel == rel {
			return true
		}
	}
	return false
}
