package replicate

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/zeebo/xxh3"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// BlockSize is the block of delta transfer for large files.
const BlockSize = 256 << 10

// DeltaMin is the size from which a changed file ships only its changed
// blocks (when the source knows what it shipped last for that path).
const DeltaMin = 4 << 20

// fileHashes is what the source shipped last for a large file: the
// XXH3-128 hash of each block, and the size.
type fileHashes struct {
	size   int64
	hashes []byte
}

// hashBlocks returns the block hashes of the first size bytes of f (the
// same XXH3-128 per block the mirror's strict mode uses).
func hashBlocks(f *os.File, size int64, buf []byte) ([]byte, error) {
	out := make([]byte, 0, (size+BlockSize-1)/BlockSize*wire.HashSize)
	for off := int64(0); off < size; off += BlockSize {
		n := int(min(BlockSize, size-off))
		if _, err := f.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return nil, err
		}
		h := hashOf(buf[:n])
		out = append(out, h[:]...)
	}
	return out, nil
}

// verifyBlocks checks that the first size bytes of f hash to want.
func verifyBlocks(f *os.File, size, blockSize int64, want, buf []byte) error {
	if blockSize != BlockSize {
		return fmt.Errorf("block size %d, want %d", blockSize, BlockSize)
	}
	got, err := hashBlocks(f, size, buf)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("patched content differs from the source")
	}
	return nil
}

// hashOf is the block hash.
func hashOf(b []byte) [wire.HashSize]byte { return xxh3.Hash128(b).Bytes() }

// isAppend reports whether the file (size bytes, block hashes now) only
// grew past base.size since base was shipped: every whole old block hashes
// the same and so does the old partial last block's range.
func isAppend(f *os.File, base fileHashes, now []byte, size int64, buf []byte) bool {
	if size < base.size || len(base.hashes) == 0 {
		return false
	}
	whole := int(base.size / BlockSize)
	if len(now) < whole*wire.HashSize || !bytes.Equal(base.hashes[:whole*wire.HashSize], now[:whole*wire.HashSize]) {
		return false
	}
	tail := base.size - int64(whole)*BlockSize
	if tail == 0 {
		return true
	}
	if len(base.hashes) < (whole+1)*wire.HashSize {
		return false
	}
	if _, err := f.ReadAt(buf[:tail], int64(whole)*BlockSize); err != nil && err != io.EOF {
		return false
	}
	h := hashOf(buf[:tail])
	return bytes.Equal(h[:], base.hashes[whole*wire.HashSize:(whole+1)*wire.HashSize])
}
