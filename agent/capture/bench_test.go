package capture

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkLatency measures the time from a write (create+write+close of a
// small file) to the receipt of its modify event.
func BenchmarkLatency(b *testing.B) {
	for _, force := range []bool{false, true} {
		b.Run(force2name(force), func(b *testing.B) {
			mnt := benchFS(b)
			w, err := Watch(b.Context(), Options{Root: mnt, ForceInotify: force, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				name := fmt.Sprintf("f%d", i)
				i++
				t0 := time.Now()
				if err := os.WriteFile(filepath.Join(mnt, name), []byte("x"), 0o644); err != nil {
					b.Fatal(err)
				}
			wait:
				for batch := range w.Events() {
					for _, e := range batch {
						if e.Path == name && e.Op == OpModify {
							break wait
						}
					}
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// benchFS mounts a private tmpfs for a benchmark.
func benchFS(b *testing.B) string {
	if os.Geteuid() != 0 {
		b.Skip("needs root to mount a tmpfs and to use fanotify")
	}
	mnt := b.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", mnt).CombinedOutput(); err != nil {
		b.Skipf("needs mount -t tmpfs: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}
