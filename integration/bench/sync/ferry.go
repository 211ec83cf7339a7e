package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/agent/replicate"
)

// ferryRig is a CA and two agents on loopback, in this process.
type ferryRig struct {
	src, dst *agent.Agent
	ctl      *agent.Controller
	cancel   context.CancelFunc
	done     chan struct{}
	n        int
}

func newFerryRig(dir string) (*ferryRig, error) {
	ca := filepath.Join(dir, "ca")
	if err := pki.InitCA(ca, "bench CA"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &ferryRig{cancel: cancel, done: make(chan struct{}, 2)}
	for i, p := range []**agent.Agent{&r.src, &r.dst} {
		d := filepath.Join(dir, fmt.Sprint("agent", i))
		id, err := pki.LoadOrIssue(ca, filepath.Join(d, "identity"), fmt.Sprint("agent", i), nil)
		if err != nil {
			return nil, err
		}
		a, err := agent.New(agent.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(d, "data"),
			ServerTLS: id.ServerTLS(), ClientTLS: id.ClientTLS()})
		if err != nil {
			return nil, err
		}
		*p = a
		go func() { a.Serve(ctx); r.done <- struct{}{} }()
	}
	id, err := pki.LoadOrIssue(ca, filepath.Join(dir, "cli"), "cli", nil)
	if err != nil {
		return nil, err
	}
	r.ctl = &agent.Controller{TLS: id.ClientTLS()}
	return r, nil
}

func (r *ferryRig) close() {
	r.cancel()
	<-r.done
	<-r.done
}

func (r *ferryRig) run(sc scenario, src, dst string, d, window time.Duration) (result, error) {
	r.n++
	from := agent.Endpoint{Addr: r.src.Addr().String(), Path: src}
	to := agent.Endpoint{Addr: r.dst.Addr().String(), Path: dst}
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
