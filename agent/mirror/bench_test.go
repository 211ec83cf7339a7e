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

// BenchmarkSmallFiles mirrors 5,000 files of 1-8 KiB per iteration.
func BenchmarkSmallFiles(b *testing.B) {
	src := b.TempDir()
	for i := range 5000 {
		d := filepath.Join(src, "d"+string(rune('a'+i/500)))
		if i%500 == 0 {
			os.MkdirAll(d, 0o755)
		}
		os.WriteFile(filepath.Join(d, "f"+itoa(i)), randBytes(uint64(i), 1024+i%7000), 0o644)
	}
	for b.Loop() {
		dst := b.TempDir()
		res := mirrorOnceB(b, src, dst, b.TempDir(), Options{})
		if res.serr != nil || res.rerr != nil {
			b.Fatal(res.serr, res.rerr)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// BenchmarkSmallNoChange re-mirrors 5,000 unchanged small files (time mode).
func BenchmarkSmallNoChange(b *testing.B) {
	src, dst := b.TempDir(), b.TempDir()
	for i := range 5000 {
		d := filepath.Join(src, "d"+string(rune('a'+i/500)))
		if i%500 == 0 {
			os.MkdirAll(d, 0o755)
		}
		os.WriteFile(filepath.Join(d, "f"+itoa(i)), randBytes(uint64(i), 1024+i%7000), 0o644)
	}
	mirrorOnceB(b, src, dst, "", Options{})
	for b.Loop() {
		res := mirrorOnceB(b, src, dst, "", Options{})
		if res.serr != nil || res.rerr != nil || res.sum.FilesSent != 0 {
			b.Fatal(res.serr, res.rerr, res.sum.FilesSent)
		}
	}
}

// BenchmarkNoChangeDir re-mirrors the tree named by BENCH_SRC (e.g. the
// benchmark's 50,000-file data set) unchanged, in time mode.
func BenchmarkNoChangeDir(b *testing.B) {
	src := os.Getenv("BENCH_SRC")
	if src == "" {
		b.Skip("set BENCH_SRC to a tree")
	}
	dst := b.TempDir()
	mirrorOnceB(b, src, dst, "", Options{})
	for b.Loop() {
		res := mirrorOnceB(b, src, dst, "", Options{})
		if res.serr != nil || res.rerr != nil || res.sum.FilesSent != 0 {
			b.Fatal(res.serr, res.rerr, res.sum.FilesSent)
		}
	}
}

// BenchmarkInitialDir mirrors the tree named by BENCH_SRC into a fresh
// target per iteration.
func BenchmarkInitialDir(b *testing.B) {
	src := os.Getenv("BENCH_SRC")
	if src == "" {
		b.Skip("set BENCH_SRC to a tree")
	}
	data := b.TempDir()
	for b.Loop() {
		dst := b.TempDir()
		res := mirrorOnceB(b, src, dst, data, Options{})
		if res.serr != nil || res.rerr != nil {
			b.Fatal(res.serr, res.rerr)
		}
	}
}
