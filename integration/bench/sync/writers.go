package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/agent/replicate/workload"
)

// mixed runs the sync tests' workload generator at rate operations a
// second (no multi-MiB files: those belong to the append scenario).
func mixed(rate int) func(ctx context.Context, src string, d time.Duration) (int, error) {
	return func(ctx context.Context, src string, d time.Duration) (int, error) {
		st, err := workload.Run(ctx, workload.Config{Root: src, Seed: uint64(rate), Rate: rate, Duration: d,
			MaxFiles: 2000, BigSize: -1, Ignore: []string{probeDir}})
		return st.Ops, err
	}
}

// appendStream appends to one file at bytesPerSec, in 512 KiB writes.
func appendStream(bytesPerSec int) func(ctx context.Context, src string, d time.Duration) (int, error) {
	return func(ctx context.Context, src string, d time.Duration) (int, error) {
		f, err := os.Create(filepath.Join(src, "stream.log"))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		chunk := make([]byte, 512<<10)
		for i := range chunk {
			chunk[i] = byte(i*7 + i>>9)
		}
		every := time.Duration(float64(time.Second) * float64(len(chunk)) / float64(bytesPerSec))
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.Now().Add(d)
		ops := 0
		for time.Now().Before(end) {
			select {
			case <-ctx.Done():
				return ops, nil
			case <-t.C:
			}
			chunk[0] = byte(ops)
			if _, err := f.Write(chunk); err != nil {
				return ops, err
			}
			ops++
		}
		return ops, nil
	}
}
