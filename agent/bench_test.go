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
