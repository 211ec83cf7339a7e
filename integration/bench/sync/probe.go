package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// probeDir holds the probe files (the workload leaves it alone).
const probeDir = ".probe"

type lagStats struct {
	n, lost       int
	p50, p99, max time.Duration
}

// probe writes src/.probe/pN every 100 ms until ctx ends and measures how
// long each takes to appear under dst; probes still missing timeout after
// the end count as lost.
func probe(ctx context.Context, src, dst string, timeout time.Duration) lagStats {
	var mu sync.Mutex
	var lags []time.Duration
	lost := 0
	var wg sync.WaitGroup
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return summarize(lags, lost)
		case <-t.C:
		}
		rel := filepath.Join(probeDir, fmt.Sprintf("p%d", n))
		start := time.Now()
		if err := os.WriteFile(filepath.Join(src, rel), []byte(start.String()), 0o644); err != nil {
			continue
		}
		wg.Go(func() {
			deadline := start.Add(timeout)
			for time.Now().Before(deadline) {
				if _, err := os.Lstat(filepath.Join(dst, rel)); err == nil {
					mu.Lock()
					lags = append(lags, time.Since(start))
					mu.Unlock()
					return
				}
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			lost++
			mu.Unlock()
		})
	}
}

func summarize(l []time.Duration, lost int) lagStats {
	s := lagStats{n: len(l) + lost, lost: lost}
	if len(l) == 0 {
		return s
	}
	slices.Sort(l)
	pick := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	s.p50, s.p99, s.max = pick(0.50), pick(0.99), l[len(l)-1]
	return s
}
