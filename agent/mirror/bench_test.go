package mirror

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLargeFile mirrors one 256 MiB file per iteration over loopback
// TCP (no TLS), with checkpoints on.
func BenchmarkLargeFile(b *testing.B) {
	src, data := b.TempDir(), b.TempDir()
	if err := os.WriteFile(filepath.Join(src, "big"), randBytes(1, 256<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(256 << 20)
	for b.Loop() {
		dst := b.TempDir()
		t := &testing.T{}
		_ = t
		res := mirrorOnceB(b, src, dst, os.Getenv("BENCH_DATADIR"), Options{})
		_ = data
		if res.serr != nil || res.rerr != nil {
			b.Fatal(res.serr, res.rerr)
		}
	}
}
