package mirror

import (
	"fmt"
	"io"
	"os"

	"github.com/ferry-migrate/ferry/agent/wire"
	"github.com/zeebo/xxh3"
)

// blockHashes returns the XXH3-128 hashes of the blocks of the first n bytes
// of f, BlockSize each (the last may be shorter), concatenated. buf is a
// scratch buffer of at least BlockSize bytes.
func blockHashes(f *os.File, n int64, buf []byte) ([]byte, error) {
	nb := (n + BlockSize - 1) / BlockSize
	out := make([]byte, 0, nb*wire.HashSize)
	for off := int64(0); off < n; off += BlockSize {
		l := min(int64(BlockSize), n-off)
		b := buf[:l]
		if _, err := f.ReadAt(b, off); err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("read %s at %d: file shrank", f.Name(), off)
			}
			return nil, err
		}
		h := xxh3.Hash128(b).Bytes()
		out = append(out, h[:]...)
	}
	return out, nil
}

// blockHash returns the hash of one block.
func blockHash(b []byte) [wire.HashSize]byte { return xxh3.Hash128(b).Bytes() }

// contentHash returns the XXH3-128 hash of the whole content of f (size
// bytes, read with ReadAt). Holes read as zeros, so sparse and dense copies
// of the same bytes hash alike.
func contentHash(f *os.File, size int64, buf []byte) ([wire.HashSize]byte, error) {
	h := xxh3.New128()
	for off := int64(0); off < size; {
		l := min(int64(len(buf)), size-off)
		n, err := f.ReadAt(buf[:l], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && !(err == io.EOF && off == size) {
			if err == io.EOF {
				return [wire.HashSize]byte{}, fmt.Errorf("read %s at %d: file shrank", f.Name(), off)
			}
			return [wire.HashSize]byte{}, err
		}
	}
	return h.Sum128().Bytes(), nil
}
