package mirror

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// TestCheckpointOfVanishedFile: a cut leaves a checkpointed partial file on
// the target; the file is deleted on the source before the rerun (each
// large file the cut left unfinished is). The
// complete rerun drops the checkpoint and removes its temporary: nothing
// of it is left in the tree or in the data dir.
func TestCheckpointOfVanishedFile(t *testing.T) {
	src := t.TempDir()
	total := buildResumeTree(t, src)
	opts := Options{CheckpointBytes: 512 << 10}
	dst, data := t.TempDir(), t.TempDir()
	res := mirrorOnce(t, src, dst, data, opts, func(s *Sender, r *Receiver) {
		s.Conn = wire.NewConn(&cutConn{Conn: s.Conn.NetConn(), limit: total / 2})
	})
	if res.serr == nil {
		t.Fatal("the first run did not fail")
	}
	parts, _ := os.ReadDir(filepath.Join(JobDir(data, "job1"), "partial"))
	if len(parts) == 0 {
		t.Fatal("the cut left no checkpoint: nothing to test")
	}
	// Delete the large files the cut left unfinished (a file the first run
	// completed would stay on the target as an orphan, kept by default).
	for i := range 3 {
		name := "big" + strconv.Itoa(i)
		if _, err := os.Lstat(filepath.Join(dst, name)); err == nil {
			continue
		}
		if err := os.Remove(filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	mustMirror(t, src, dst, data, opts)
	mustIdentical(t, src, dst, opts)
	left, _ := os.ReadDir(filepath.Join(JobDir(data, "job1"), "partial"))
	if len(left) != 0 {
		t.Errorf("%d checkpoints left after a complete run", len(left))
	}
	filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".ferry.") {
			t.Errorf("temporary %s left in the target", p)
		}
		return nil
	})
}
