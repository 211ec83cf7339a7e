package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
)

// measure runs the scenario's writer on src for d with the probe alongside,
// then waits up to window for the trees to compare equal.
func measure(sc scenario, src, dst string, d, window time.Duration) (result, error) {
	os.MkdirAll(filepath.Join(src, probeDir), 0o755)
	time.Sleep(500 * time.Millisecond) // let the tool pick the directory up
	ctx, cancel := context.WithCancel(context.Background())
	lagCh := make(chan lagStats, 1)
	go func() { lagCh <- probe(ctx, src, dst, 10*time.Second) }()
	ops, err := sc.write(context.Background(), src, d)
	cancel()
	r := result{ops: ops, lag: <-lagCh, convergedIn: -1}
	if err != nil {
		return r, err
	}
	start := time.Now()
	for {
		n, err := differences(src, dst)
		if err != nil {
			return r, err
		}
		r.diffsAt = n
		if n == 0 {
			r.convergedIn = time.Since(start)
			return r, nil
		}
		if time.Since(start) >= window {
			if ds, err := differenceList(src, dst); err == nil {
				for _, d := range ds[:min(len(ds), 5)] {
					fmt.Fprintf(os.Stderr, "  still different: %+v\n", d)
				}
			}
			return r, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// differences compares the two local trees with the mirror's verify
// (content hashes and all metadata).
func differences(src, dst string) (int, error) {
	d, err := differenceList(src, dst)
	return len(d), err
}

func differenceList(src, dst string) ([]mirror.Difference, error) {
	ctx := context.Background()
	a, err := mirror.Manifest(ctx, src, mirror.Options{}, "")
	if err != nil {
		return nil, err
	}
	b, err := mirror.Manifest(ctx, dst, mirror.Options{}, "")
	if err != nil {
		return nil, err
	}
	return mirror.Compare(a, b), nil
}
