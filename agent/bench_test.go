package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ferry-migrate/ferry/agent/mirror"
)

// BenchmarkAgentLargeFile mirrors one 512 MiB file between two in-process
// agents over mutual TLS on loopback.
func BenchmarkAgentLargeFile(b *testing.B) {
	ckpt, _ := strconv.ParseInt(os.Getenv("BENCH_CKPT"), 10, 64) // 0: default
	ca := newCA(b)
	env := &testEnv{ca: ca, src: startAgent(b, ca, "src", ckpt), dst: startAgent(b, ca, "dst", ckpt), ctl: controllerFor(b, ca)}
	src := b.TempDir()
	buf := make([]byte, 512<<20)
	for i := range buf {
		buf[i] = byte(i*2654435761>>13) ^ byte(i>>20)
	}
	os.WriteFile(filepath.Join(src, "big"), buf, 0o644)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		dst := filepath.Join(b.TempDir(), "dst")
		if _, err := env.mirror(b, src, dst, mirror.Options{}); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dst)
	}
}

// BenchmarkAgentTree mirrors the tree named by FERRY_BENCH_TREE between two
// in-process agents over mutual TLS (initial: into a fresh target each
// iteration; no-change: again into the same target, time mode). For
// profiling the real data sets: go test -bench AgentTree -cpuprofile.
func BenchmarkAgentTree(b *testing.B) {
	src := os.Getenv("FERRY_BENCH_TREE")
	if src == "" {
		b.Skip("needs FERRY_BENCH_TREE, a directory to mirror")
	}
	ca := newCA(b)
	env := &testEnv{ca: ca, src: startAgent(b, ca, "src", 0), dst: startAgent(b, ca, "dst", 0), ctl: controllerFor(b, ca)}
	b.Run("initial", func(b *testing.B) {
		for b.Loop() {
			dst := filepath.Join(b.TempDir(), "dst")
			if _, err := env.mirror(b, src, dst, mirror.Options{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.RemoveAll(dst)
			b.StartTimer()
		}
	})
	for _, mode := range []string{"time", "strict"} {
		b.Run("nochange-"+mode, func(b *testing.B) {
			dst := filepath.Join(b.TempDir(), "dst")
			if _, err := env.mirror(b, src, dst, mirror.Options{}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := env.mirror(b, src, dst, mirror.Options{Checksum: mode}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
