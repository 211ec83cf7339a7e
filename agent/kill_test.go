package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// TestMain lets the test binary run as an agent daemon in a child process
// (FERRY_TEST_AGENT=DATADIR), so that tests can kill -9 a real agent
// process. It serves exactly what `ferry agent` serves.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FERRY_TEST_AGENT"); dir != "" {
		os.Exit(runChildAgent(dir))
	}
	os.Exit(m.Run())
}

func runChildAgent(dir string) int {
	id, err := pki.LoadOrIssue(os.Getenv("FERRY_TEST_CA"), filepath.Join(dir, "identity"), "child", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ckpt, _ := strconv.ParseInt(os.Getenv("FERRY_TEST_CKPT"), 10, 64)
	a, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir, ServerTLS: id.ServerTLS(), ClientTLS: id.ClientTLS(),
		Log: quietLog(), CheckpointBytes: ckpt})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening on " + a.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := a.Serve(ctx); err != nil {
		return 1
	}
	return 0
}

// childAgent is an agent process.
type childAgent struct {
	cmd  *exec.Cmd
	addr string
}

func spawnAgent(t *testing.T, ca, dir string, ckpt int64) *childAgent {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_AGENT="+dir, "FERRY_TEST_CA="+ca, "FERRY_TEST_CKPT="+strconv.FormatInt(ckpt, 10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child agent printed no address")
	}
	c := &childAgent{cmd: cmd, addr: strings.TrimPrefix(sc.Text(), "listening on ")}
	go func() {
		for sc.Scan() {
		}
	}()
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	return c
}

func (c *childAgent) kill9() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// TestResumeAfterKill9 kills the source or the target agent process with
// SIGKILL at a seeded random point of a mirror, restarts it on the same data
// dir and runs the same job again: the tree must end identical and the bytes
// sent twice must stay under 5% of the total.
func TestResumeAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 x 320 MiB through two agent processes")
	}
	ca := newCA(t)
	ctl := controllerFor(t, ca)
	src := t.TempDir()
	var total int64
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 2 {
		p := filepath.Join(src, "big"+strconv.Itoa(i))
		b := make([]byte, 160<<20)
		for j := 0; j < len(b); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				b[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(len(b))
	}
	for i := range 300 {
		p := filepath.Join(src, "small", strconv.Itoa(i/50), strconv.Itoa(i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat(strconv.Itoa(i), 1000)), 0o644)
		total += int64(len(strings.Repeat(strconv.Itoa(i), 1000)))
	}
	const ckpt = 1 << 20
	for _, victim := range []string{"target", "source"} {
		t.Run(victim, func(t *testing.T) {
			seed := uint64(len(victim))
			r := rand.New(rand.NewPCG(seed, 7))
			killAt := total/10 + r.Int64N(total*8/10)
			sdir, tdir, dst := t.TempDir(), t.TempDir(), t.TempDir()
			sa, ta := spawnAgent(t, ca, sdir, ckpt), spawnAgent(t, ca, tdir, ckpt)
			job := "kill-" + victim
			// The first run is paced so that the kill lands mid-transfer
			// (unpaced, 320 MiB can finish between two progress reports),
			// and so that a target starved of CPU by other tests keeps up
			// (what sits in socket buffers when it dies is sent again).
			req := MirrorRequest{JobID: job, From: Endpoint{sa.addr, src}, To: Endpoint{ta.addr, dst},
				Opts: mirror.Options{BWLimit: "100M"}}
			var w1 atomic.Int64
			var killed atomic.Bool
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := ctl.Mirror(ctx, req, func(p mirror.Progress) {
				w1.Store(p.WireBytes)
				if p.WireBytes >= killAt && killed.CompareAndSwap(false, true) {
					if victim == "target" {
						ta.kill9()
					} else {
						sa.kill9()
					}
				}
			})
			if err == nil || !killed.Load() {
				t.Fatalf("first run: err %v, killed %v (kill at %d of %d)", err, killed.Load(), killAt, total)
			}
			if victim == "target" {
				ta = spawnAgent(t, ca, tdir, ckpt)
			} else {
				sa = spawnAgent(t, ca, sdir, ckpt)
			}
			req.From.Addr, req.To.Addr = sa.addr, ta.addr
			req.Opts.BWLimit = ""
			var sum mirror.Summary
			for try := 0; ; try++ {
				sum, err = ctl.Mirror(ctx, req, nil)
				if err == nil || try == 20 || !errors.Is(err, wire.ErrBusy) {
					break
				}
				time.Sleep(100 * time.Millisecond) // the survivor may still be tearing down the old job
			}
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			diffs, err := ctl.Verify(ctx, req.From, req.To, mirror.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(diffs) > 0 {
				t.Fatalf("after resume: %d differences, first %+v", len(diffs), diffs[0])
			}
			resent := w1.Load() + sum.BytesOnWire - total
			t.Logf("kill -9 %s at %d of %d: run 1 wrote >= %d, run 2 wrote %d (%d resumed files, %d bytes kept): re-sent %d = %.2f%%",
				victim, killAt, total, w1.Load(), sum.BytesOnWire, sum.ResumedFiles, sum.ResumedBytes, resent, 100*float64(resent)/float64(total))
			if resent > total/20 {
				t.Errorf("re-sent %d bytes, more than 5%% of %d", resent, total)
			}
		})
	}
}
