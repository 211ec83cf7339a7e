package agents

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// bigFileMiB is the size of the file that keeps the mirror busy for a few
// seconds, long enough to kill a process in the middle of it.
const bigFileMiB = 256

// checkpointBytes is the agents' durability interval for large files.
const checkpointBytes = 4 << 20

// writeBig writes one file of random data.
func writeBig(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, bigFileMiB<<20); err != nil {
		t.Fatal(err)
	}
}

// changer changes the source tree every 20 ms until stopped: creates,
// appends, renames and deletes.
func changer(dir string) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			p := filepath.Join(dir, "live", fmt.Sprintf("w%03d.txt", i%50))
			os.MkdirAll(filepath.Dir(p), 0o755)
			switch i % 5 {
			case 0, 1:
				os.WriteFile(p, []byte(fmt.Sprintf("write %d\n", i)), 0o644)
			case 2:
				if f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
					fmt.Fprintf(f, "append %d\n", i)
					f.Close()
				}
			case 3:
				os.Rename(p, p+".renamed")
			case 4:
				os.Remove(filepath.Join(dir, "live", fmt.Sprintf("w%03d.txt.renamed", (i+25)%50)))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// TestKill9 kills with SIGKILL the real `ferry worker`, the source `ferry
// agent` and the target `ferry agent`, each once during mirroring and once
// during syncing, restarts the killed process, and checks that every job
// still ends in cutover_complete with identical trees. It reports the bytes
// sent again: for kills during the mirror from the mirror's summary, for
// kills during the sync from the source agent's log (the resync mirrors
// completed after the kill).
func TestKill9(t *testing.T) {
	c := newCluster(t)
	// The receiver makes large files durable every 4 MiB (default 64 MiB),
	// which bounds what a killed target loses of a partly written file.
	ckpt := []string{"--checkpoint-bytes", fmt.Sprint(checkpointBytes)}
	src, dst := c.startAgent("source", ckpt...), c.startAgent("target", ckpt...)
	big := filepath.Join(c.dir, "big.bin")
	writeBig(t, big)
	for _, phase := range []ferry.JobState{ferry.JobMirroring, ferry.JobSyncing} {
		for _, victim := range []string{"worker", "source", "target"} {
			name := victim + "-during-" + string(phase)
			ok := t.Run(name, func(t *testing.T) {
				// Helpers report to the subtest; processes stay owned by
				// the parent test, which outlives the subtests.
				parent := c.t
				c.t = t
				defer func() { c.t = parent }()
				var p *proc
				var restart func()
				switch victim {
				case "worker":
					p, restart = c.worker, func() { c.worker.start() }
				case "source":
					p, restart = src.proc, func() { src.restart(t) }
				case "target":
					p, restart = dst.proc, func() { dst.restart(t) }
				}
				killDuring(t, c, src, dst, name, phase, big, p, restart)
			})
			if !ok {
				return // the cluster's state is unknown after a failure
			}
		}
	}
}

func killDuring(t *testing.T, c *cluster, src, dst *agentProc, name string, phase ferry.JobState, big string, victim *proc, restart func()) {
	root := filepath.Join(c.dir, name)
	srcPath, dstPath := filepath.Join(root, "src", "app"), filepath.Join(root, "dst", "app")
	makeTree(t, srcPath, 40)
	os.MkdirAll(filepath.Dir(dstPath), 0o755)
	var total int64
	if phase == ferry.JobMirroring {
		if err := os.Link(big, filepath.Join(srcPath, "big.bin")); err != nil {
			t.Fatal(err)
		}
		total = treeBytes(srcPath)
	}
	id := c.createJob(name, src, dst, srcPath, dstPath)
	replica := activities.Layout{JobID: id, Target: dstPath}.Replica()

	var receivedAtKill int64
	var stopChanger func()
	switch phase {
	case ferry.JobMirroring:
		// Kill once a tenth of the data arrived on the target's disk.
		waitFor(t, "a tenth of the tree on the target", 2*time.Minute, func() bool { return treeBytes(replica) >= total/10 })
		victim.kill9()
		receivedAtKill = treeBytes(replica)
		if receivedAtKill >= total {
			t.Fatalf("the mirror finished before the kill (%d of %d bytes)", receivedAtKill, total)
		}
	case ferry.JobSyncing:
		c.waitState(id, ferry.JobSyncing, 2*time.Minute)
		stopChanger = changer(srcPath)
		time.Sleep(time.Second)
		victim.kill9()
	}
	killedAt := time.Now()
	time.Sleep(2 * time.Second)
	restart()
	if stopChanger != nil {
		time.Sleep(time.Second)
		stopChanger()
	}
	c.cutover(id, 3*time.Minute)
	if d := differences(t, srcPath, dstPath); len(d) != 0 {
		t.Fatalf("%d differences after cutover: %v", len(d), d)
	}
	t.Logf("%s: cutover_complete %s after the kill, zero differences", name, time.Since(killedAt).Round(time.Second))
	if phase != ferry.JobMirroring {
		// A sync session restarted after a kill resyncs with a time-mode
		// mirror (unchanged files are skipped). The sync stats carry no
		// mirror byte count, so the bytes come from the source agent's JSON
		// log: every mirror of this tree (full resync or subtree rescan)
		// that completed after the kill. They include the files the
		// changer really changed, so they bound what was sent again.
		tree := treeBytes(srcPath)
		sent, mirrors := mirrorBytesSince(src.p.Output(), srcPath, killedAt)
		t.Logf("re-sent after kill -9 of %s: %d bytes in %d mirror(s) completed after the kill (tree %d bytes, %.2f%%; includes files changed meanwhile)",
			name, sent, mirrors, tree, 100*float64(sent)/float64(max(tree, 1)))
		if sent > tree {
			t.Errorf("the resyncs after the kill sent %d bytes, more than the whole tree's %d", sent, tree)
		}
		return
	}
	// Bytes sent again: what had arrived when the process died plus what
	// the final mirror attempt sent, beyond the tree's size (one attempt:
	// what it sent beyond the tree's size). What a killed target had
	// written past its last checkpoint is sent again, so up to one
	// checkpoint interval per failed attempt is expected; attempts that
	// failed while the killed agent was away may have sent a little too.
	var res activities.MirrorResult
	found := false
	for _, e := range c.events(id, ferry.JobEventProgress) {
		if json.Unmarshal(e.Details, &res) == nil && res.Summary.Bytes > 0 {
			found = true
		}
	}
	if !found {
		t.Fatal("no mirror summary among the job's progress events")
	}
	resent := res.Summary.BytesSent - res.Summary.Bytes
	if res.Attempt > 1 {
		resent = receivedAtKill + res.Summary.BytesSent - res.Summary.Bytes
	}
	resent = max(resent, 0)
	t.Logf("re-sent after kill -9 of %s: tree %d bytes, %d on the target at the kill, final attempt %d sent %d; re-sent %d bytes (%.2f%%)",
		name, res.Summary.Bytes, receivedAtKill, res.Attempt, res.Summary.BytesSent, resent, 100*float64(resent)/float64(res.Summary.Bytes))
	if float64(resent) > 0.05*float64(res.Summary.Bytes) {
		t.Fatalf("re-sent %d bytes, more than 5%% of %d", resent, res.Summary.Bytes)
	}
}

// mirrorBytesSince sums bytes_sent of the "send done" lines a source
// agent logged (JSON) after since, for sends of root or a subtree of it.
func mirrorBytesSince(log, root string, since time.Time) (bytes int64, mirrors int) {
	type line struct {
		Time      time.Time `json:"time"`
		Msg       string    `json:"msg"`
		Job       string    `json:"job"`
		Root      string    `json:"root"`
		BytesSent int64     `json:"bytes_sent"`
	}
	ofRoot := map[string]bool{} // send job IDs of this tree
	for l := range strings.Lines(log) {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var e line
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		switch e.Msg {
		case "sending":
			if e.Root == root || strings.HasPrefix(e.Root, root+"/") {
				ofRoot[e.Job] = true
			}
		case "send done":
			if ofRoot[e.Job] && e.Time.After(since) {
				bytes += e.BytesSent
				mirrors++
			}
		}
	}
	return bytes, mirrors
}
