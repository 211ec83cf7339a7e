package mirror

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/agent/wire"
)

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func TestMirrorBasicAndNoChange(t *testing.T) {
	src, dst, data := t.TempDir(), t.TempDir(), t.TempDir()
	for i := range 300 {
		writeFile(t, filepath.Join(src, "d", string(rune('a'+i%7)), "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), randBytes(uint64(i), 100+i*37))
	}
	writeFile(t, filepath.Join(src, "big"), randBytes(99, 5<<20+123))
	writeFile(t, filepath.Join(src, "empty"), nil)
	for _, mode := range []string{wire.ChecksumTime, wire.ChecksumStrict} {
		opts := Options{Checksum: mode}
		sum := mustMirror(t, src, dst, data, opts)
		mustIdentical(t, src, dst, opts)
		t.Logf("%s: %+v", mode, sum)
		again := mustMirror(t, src, dst, data, opts)
		if again.BytesSent != 0 || again.FilesSent != 0 || again.FilesUpToDate != again.Files {
			t.Errorf("%s no-change re-run sent %d files, %d bytes", mode, again.FilesSent, again.BytesSent)
			t.Logf("%+v", again)
		}
	}
}

func TestDeltaSendsOnlyChangedBlocks(t *testing.T) {
	src, dst, data := t.TempDir(), t.TempDir(), t.TempDir()
	const size = 100 << 20
	orig := randBytes(7, size)
	writeFile(t, filepath.Join(src, "f"), orig)
	opts := Options{Checksum: wire.ChecksumStrict}
	mustMirror(t, src, dst, data, opts)
	changed := bytes.Clone(orig)
	r := rand.New(rand.NewPCG(3, 3))
	for range 10 {
		off := r.IntN(size - 4096)
		copy(changed[off:], randBytes(r.Uint64(), 4096))
	}
	writeFile(t, filepath.Join(src, "f"), changed)
	for _, mode := range []string{wire.ChecksumStrict, wire.ChecksumTime} {
		if mode == wire.ChecksumTime {
			changed[100]++
			writeFile(t, filepath.Join(src, "f"), changed)
		}
		sum := mustMirror(t, src, dst, data, Options{Checksum: mode})
		mustIdentical(t, src, dst, opts)
		if w := sum.BytesOnWire + sum.BytesFromPeer; w > size/100 {
			t.Errorf("%s: delta of 10 x 4 KiB cost %d bytes on the wire (> 1%% of %d)", mode, w, size)
		}
		t.Logf("%s delta: %d bytes on wire, %d content bytes", mode, sum.BytesOnWire, sum.BytesSent)
	}
}

// TestPrefetchKnowsAbsentDirectories: files under a directory the target
// lacks (or holds as a file) are planned as absent without a stat, while
// files under an existing directory are still found up to date.
func TestPrefetchKnowsAbsentDirectories(t *testing.T) {
	src, dst, data := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{"keep", "new", "wasfile", "new/sub"} {
		for i := range 80 {
			writeFile(t, filepath.Join(src, d, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), randBytes(uint64(i), 50+i))
		}
	}
	opts := Options{Checksum: wire.ChecksumTime}
	// Then the target keeps keep/ and holds a regular file named wasfile.
	mustMirror(t, src, dst, data, opts)
	writeFile(t, filepath.Join(dst, "wasfile.tmp"), []byte("x"))
	os.RemoveAll(filepath.Join(dst, "new"))
	os.RemoveAll(filepath.Join(dst, "wasfile"))
	os.Rename(filepath.Join(dst, "wasfile.tmp"), filepath.Join(dst, "wasfile"))
	sum := mustMirror(t, src, dst, data, opts)
	mustIdentical(t, src, dst, opts)
	if sum.FilesUpToDate != 80 || sum.FilesSent != 240 {
		t.Errorf("up to date %d, sent %d; want 80 (keep/) and 240 (new/, new/sub/, wasfile/)", sum.FilesUpToDate, sum.FilesSent)
	}
}
