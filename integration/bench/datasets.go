package main

import (
	"bufio"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

type sizes struct {
	files int
	big   int64
	delta int64
}

type datasets struct {
	small, large            string
	deltaBase, deltaChanged string
	half                    string // half-compressible data (transfer scenario)
}

// datasetDirs returns the directories of complete data sets.
func datasetDirs(cache string, sz sizes) (datasets, error) {
	tag := fmt.Sprintf("%d-%d-%d", sz.files, sz.big, sz.delta)
	root := filepath.Join(cache, "data-"+tag)
	for _, m := range []string{".complete", ".complete-half2"} {
		if _, err := os.Stat(filepath.Join(root, m)); err != nil {
			return datasets{}, fmt.Errorf("data sets not built: %w", err)
		}
	}
	return datasets{
		small: filepath.Join(root, "small"), large: filepath.Join(root, "large"),
		deltaBase: filepath.Join(root, "delta-base"), deltaChanged: filepath.Join(root, "delta-changed"),
		half: filepath.Join(root, "half"),
	}, nil
}

// buildDatasets creates the data sets under cache once (a marker file
// records completion) and returns their directories.
func buildDatasets(cache string, sz sizes) (datasets, error) {
	tag := fmt.Sprintf("%d-%d-%d", sz.files, sz.big, sz.delta)
	root := filepath.Join(cache, "data-"+tag)
	ds := datasets{
		small: filepath.Join(root, "small"), large: filepath.Join(root, "large"),
		deltaBase: filepath.Join(root, "delta-base"), deltaChanged: filepath.Join(root, "delta-changed"),
		half: filepath.Join(root, "half"),
	}
	// The half-compressible set came later: it has its own marker.
	if err := buildHalf(root, ds.half, sz.big/2); err != nil {
		return ds, err
	}
	marker := filepath.Join(root, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return ds, nil
	}
	for _, d := range []string{ds.small, ds.large, ds.deltaBase, ds.deltaChanged} {
		os.RemoveAll(d)
	}
	log.Printf("building data sets in %s", root)
	rng := rand.New(rand.NewPCG(1, 2))
	// 50,000 files of 1-8 KiB, 100 per directory, two levels.
	for i := range sz.files {
		dir := filepath.Join(ds.small, "d"+strconv.Itoa(i/10000), "e"+strconv.Itoa(i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return ds, err
			}
		}
		n := 1024 + rng.IntN(7*1024+1)
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), randBytes(rng, n), 0o644); err != nil {
			return ds, err
		}
	}
	for i := range 2 {
		if err := writeRandom(filepath.Join(ds.large, "big"+strconv.Itoa(i)), sz.big, rng); err != nil {
			return ds, err
		}
	}
	base := filepath.Join(ds.deltaBase, "file")
	if err := writeRandom(base, sz.delta, rng); err != nil {
		return ds, err
	}
	changed := filepath.Join(ds.deltaChanged, "file")
	if err := copyFile(base, changed); err != nil {
		return ds, err
	}
	f, err := os.OpenFile(changed, os.O_WRONLY, 0)
	if err != nil {
		return ds, err
	}
	for range 10 {
		off := rng.Int64N(sz.delta - 4096)
		if _, err := f.WriteAt(randBytes(rng, 4096), off); err != nil {
			f.Close()
			return ds, err
		}
	}
	if err := f.Close(); err != nil {
		return ds, err
	}
	return ds, os.WriteFile(marker, nil, 0o644)
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func writeRandom(path string, size int64, rng *rand.Rand) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for left := size; left > 0; {
		n := min(left, 1<<20)
		if _, err := w.Write(randBytes(rng, int(n))); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// buildHalf writes 2 files of size bytes that zstd compresses to about half:
// every 4 KiB block is 2 KiB of random bytes followed by 2 KiB of log
// lines (a timestamp, a host, a message from a small set, a counter).
func buildHalf(root, dir string, size int64) error {
	marker := filepath.Join(root, ".complete-half2")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	os.RemoveAll(dir)
	log.Printf("building half-compressible data in %s", dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	msgs := []string{"mirror job started", "block verified", "sync batch applied", "checkpoint recorded", "peer connected"}
	seq := 0
	for i := range 2 {
		f, err := os.Create(filepath.Join(dir, "half"+strconv.Itoa(i)))
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		blk, text := make([]byte, 4096), make([]byte, 0, 2200)
		for left := size; left > 0; left -= 4096 {
			copy(blk, randBytes(rng, 2048))
			t := text[:0]
			for len(t) < 2048 {
				seq++
				t = fmt.Appendf(t, "2026-11-25T12:%02d:%02d.%03dZ host-%d ferry[%d]: %s seq=%d\n",
					seq/60000%60, seq/1000%60, seq%1000, rng.IntN(4), 4242, msgs[rng.IntN(len(msgs))], seq)
			}
			copy(blk[2048:], t)
			if _, err := w.Write(blk[:min(left, 4096)]); err != nil {
				f.Close()
				return err
			}
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return os.WriteFile(marker, nil, 0o644)
}
