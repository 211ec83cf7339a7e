// Package e2e migrates a live Debian system between two hosts in network
// namespaces through the public API, with faults injected at seeded random
// points, and checks that nothing was lost.
//
// Run with `go tool task e2e` (part of `go tool task test`). FERRY_E2E_SEED
// replays a run.
package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func seed(t *testing.T) uint64 {
	if s := os.Getenv("FERRY_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_E2E_SEED=%q: %v", s, err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

func TestMigrateLiveDebianSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the e2e migration needs root (network namespaces, chroot, device nodes)")
	}
	s := seed(t)
	t.Logf("seed %d (FERRY_E2E_SEED=%d replays this run)", s, s)
	rng := rand.New(rand.NewPCG(s, s^0x5eed))

	rootfs := debianRootfs(t)
	c := newCluster(t)

	// The source system and the live application writing into it.
	srcRoot := filepath.Join(c.dir, "src-root")
	dstRoot := filepath.Join(c.dir, "dst-root")
	if err := os.MkdirAll(srcRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	copyTree(t, rootfs, srcRoot)
	w := startWriter(t, srcRoot, nil)

	var job struct {
		ID string `json:"id"`
	}
	hook := fmt.Sprintf("kill -TERM %d; while kill -0 %d 2>/dev/null; do sleep 0.1; done", w.cmd.Process.Pid, w.cmd.Process.Pid)
	c.api.call("POST", "/api/v1/jobs", map[string]any{
		"name": "debian-e2e", "sourceHostId": c.hostIDs["src"], "sourcePaths": []string{srcRoot},
		"targetHostId": c.hostIDs["dst"], "targetPath": dstRoot,
		"systemProfile": true, "checksumMode": "time", "compression": "fast", "encryption": "aes",
		"lagThresholdSeconds": 5, "hostOfflineGraceSeconds": 600,
		"cutover": map[string]any{"preCutoverHook": map[string]any{"command": hook, "timeoutSeconds": 60}},
	}, http.StatusCreated, &job)
	f := c.api.follow(job.ID)
	c.api.call("POST", "/api/v1/jobs/"+job.ID+"/actions/start", map[string]any{}, http.StatusOK, nil)

	// Faults at seeded random points: some during the mirror, the rest
	// during sync, in a seeded order.
	faults := c.faults()
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	duringMirror := 2
	f.waitState(t, 3*time.Minute, "mirroring", "syncing", "ready_for_cutover")
	for i, ft := range faults {
		if i == duringMirror {
			f.waitState(t, 10*time.Minute, "syncing", "ready_for_cutover")
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
		before := c.proxy.Forwarded()
		phase := f.status().State
		t.Logf("fault %d/%d during %s: %s", i+1, len(faults), phase, ft.name)
		ft.inject()
		st := f.waitState(t, 10*time.Minute, "syncing", "ready_for_cutover")
		t.Logf("fault %q: recovered to %s; %d bytes crossed the data link meanwhile (bytes sent in all so far: %d)",
			ft.name, st.State, c.proxy.Forwarded()-before, st.Progress.BytesSent)
	}

	// Sync under the live writer, then a test cutover while replication
	// continues.
	f.waitState(t, 5*time.Minute, "ready_for_cutover")
	checkJobMetrics(t, c.api, job.ID)
	c.api.call("POST", "/api/v1/jobs/"+job.ID+"/actions/test-cutover", map[string]any{}, http.StatusOK, nil)
	st := f.waitState(t, 5*time.Minute, "test_cutover")
	if st.TestPath == "" {
		t.Fatal("test cutover reports no test path")
	}
	chrootCheck(t, st.TestPath)
	before := w.lastCommitted()
	time.Sleep(2 * time.Second)
	if w.lastCommitted() <= before {
		t.Fatal("the live writer stopped during the test cutover")
	}
	c.api.call("POST", "/api/v1/jobs/"+job.ID+"/actions/end-test", map[string]any{}, http.StatusOK, nil)
	f.waitState(t, 5*time.Minute, "syncing", "ready_for_cutover")
	if _, err := os.Stat(st.TestPath); !os.IsNotExist(err) {
		t.Fatalf("the test copy %s is still there after end-test: %v", st.TestPath, err)
	}

	// Cutover: the hook stops the writer, final sync, verify, swap.
	f.waitState(t, 5*time.Minute, "ready_for_cutover")
	c.api.call("POST", "/api/v1/jobs/"+job.ID+"/actions/cutover", map[string]any{}, http.StatusOK, nil)
	final := f.waitState(t, 10*time.Minute, "cutover_complete")
	select {
	case <-w.done:
	default:
		t.Fatal("the pre-cutover hook did not stop the writer")
	}
	committed := w.lastCommitted()
	t.Logf("cutover complete: %d transactions committed by the live writer; %d bytes sent in all (source tree %d bytes); %d bytes crossed the data link",
		committed, final.Progress.BytesSent, final.Progress.BytesTotal, c.proxy.Forwarded())

	// On dst: the migrated system runs, the database is intact and complete,
	// and a full compare finds nothing.
	// The compare comes first: anything that runs in the migrated root
	// afterwards (even a read-only SQLite open) may change it.
	diffs, n, err := compareTrees(srcRoot, dstRoot, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("%d differences between source and migrated system (of %d objects), e.g.:\n%s",
			len(diffs), n, strings.Join(diffs[:min(len(diffs), 30)], "\n"))
	}
	t.Logf("full compare: %d objects, zero differences", n)
	chrootCheck(t, dstRoot)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	checkDatabase(ctx, t, filepath.Join(dstRoot, "var/lib/ferry-app/app.db"), committed)

	// Bad input against the real server: every operation of its OpenAPI
	// document, without, with wrong and with real credentials.
	sys := newAPI(t, c.apiURL)
	sys.login("sysadmin", initialPassword(t, filepath.Join(c.dir, "initial-credentials"), "sysadmin"))
	adm := newAPI(t, c.apiURL)
	adm.login("admin", initialPassword(t, filepath.Join(c.dir, "initial-credentials"), "admin")+"-E2e!9")
	sent := fuzzAPI(t, c.apiURL, []string{"", "not-a-token", adm.token, sys.token}, rng)
	t.Logf("fuzz pass: %d malformed requests over every operation, no 5xx", sent)
}

// chrootCheck runs the smoke command inside a migrated root.
func chrootCheck(t *testing.T, root string) {
	t.Helper()
	out, err := exec.Command("chroot", root, "/bin/sh", "-c", "apt-get --version && id root").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "uid=0(root)") {
		t.Fatalf("chroot %s: %v\n%s", root, err, out)
	}
}

// fault is one injected failure and its repair.
type fault struct {
	name   string
	inject func()
}

func (c *cluster) faults() []fault {
	restart := func(s *service, down time.Duration) func() {
		return func() {
			s.crash()
			time.Sleep(down)
			s.start()
		}
	}
	return []fault{
		{"kill -9 of the source agent", restart(c.agents["src"], 2*time.Second)},
		{"kill -9 of the target agent", restart(c.agents["dst"], 2*time.Second)},
		{"kill -9 of ferry worker", restart(c.worker, 2*time.Second)},
		{"kill -9 of ferry server", restart(c.server, 2*time.Second)},
		{"kill -9 of the Temporal dev server", restart(c.temporal, 2*time.Second)},
		{"data link cut for 30 s", func() { c.proxy.Cut(30 * time.Second); time.Sleep(30 * time.Second) }},
		{"data link slowed to 1 MiB/s for 15 s", func() {
			c.proxy.SetRate(1 << 20)
			time.Sleep(15 * time.Second)
			c.proxy.SetRate(0)
		}},
	}
}
