package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/integration/bench/agentproc"
)

// ferryRig is a CA and two `ferry agent` processes on loopback, as in
// production: agents in this process would share its Go scheduler (and
// its 2 Ps) with the writer and the probe, whose sleeping goroutines then
// wait for a time slice (up to 10 ms) and measure the scheduler, not the
// sync. lsyncd and rsync run as processes of their own too.
type ferryRig struct {
	src, dst *agentProc
	ctl      *agent.Controller
	n        int
}

type agentProc struct {
	cmd  *exec.Cmd
	addr string
}

func newFerryRig(dir string) (*ferryRig, error) {
	bin := filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/ferry (run from the repository root): %w", err)
	}
	ca := filepath.Join(dir, "ca")
	if err := pki.InitCA(ca, "bench CA"); err != nil {
		return nil, err
	}
	r := &ferryRig{}
	for i, p := range []**agentProc{&r.src, &r.dst} {
		a, err := startAgent(bin, ca, filepath.Join(dir, fmt.Sprint("agent", i)))
		if err != nil {
			r.close()
			return nil, err
		}
		*p = a
	}
	id, err := pki.LoadOrIssue(ca, filepath.Join(dir, "cli"), "cli", nil)
	if err != nil {
		r.close()
		return nil, err
	}
	r.ctl = &agent.Controller{TLS: id.ClientTLS()}
	return r, nil
}

// startAgent starts `ferry agent` and waits for the address it listens on.
func startAgent(bin, ca, dataDir string) (*agentProc, error) {
	cmd, addr, err := agentproc.Start(bin, "127.0.0.1:0", dataDir, ca, "error")
	if err != nil {
		return nil, err
	}
	return &agentProc{cmd: cmd, addr: addr}, nil
}

func (r *ferryRig) close() {
	for _, a := range []*agentProc{r.src, r.dst} {
		if a != nil {
			agentproc.Stop(a.cmd, 10*time.Second)
		}
	}
}

func (r *ferryRig) run(sc scenario, src, dst string, d, window time.Duration) (result, error) {
	r.n++
	from := agent.Endpoint{Addr: r.src.addr, Path: src}
	to := agent.Endpoint{Addr: r.dst.addr, Path: dst}
	sess, err := r.ctl.StartSync(context.Background(), agent.SyncRequest{JobID: fmt.Sprint("bench-", r.n), From: from, To: to})
	if err != nil {
		return result{}, err
	}
	for {
		st, err := sess.Next()
		if err != nil {
			return result{}, err
		}
		if st.State == replicate.StateSyncing {
			break
		}
	}
	drained := make(chan struct{})
	go func() { // drain status reports up to the final one
		defer close(drained)
		for {
			st, err := sess.Next()
			if err != nil || st.State == replicate.StateStopped {
				return
			}
		}
	}()
	defer func() {
		sess.Cancel()
		<-drained
		sess.Close()
	}()
	return measure(sc, src, dst, d, window)
}
