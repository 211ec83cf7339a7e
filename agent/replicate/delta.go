package replicate

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/zeebo/xxh3"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// BlockSize is the largest block of delta transfer, and the chunk in
// which file content is shipped.
const BlockSize = 256 << 10

// MinBlockSize is the smallest block of delta transfer: a database page.
const MinBlockSize = 4 << 10

// maxBlocks is how many blocks a file is cut into before the block size
// grows (up to BlockSize): the hashes kept per file stay small.
const maxBlocks = 2048

// DeltaMin is the size from which a changed file ships only its changed
// blocks (when the source knows what it shipped last for that path): a
// SQLite database, its WAL (appends) and its SHM are all above it.
const DeltaMin = 16 << 10

// blockSizeFor is the delta block size of a file of size bytes: the
// smallest power of two from MinBlockSize that cuts it into at most
// maxBlocks blocks, at most BlockSize.
func blockSizeFor(size int64) int64 {
	bs := int64(MinBlockSize)
	for bs < BlockSize && (size+bs-1)/bs > maxBlocks {
		bs *= 2
	}
	return bs
}

// growBlocks is how many times maxBlocks a growing file may reach before
// its block size grows: a change of block size costs one read of the whole
// file (the old hashes are compared under the new blocks), and a log or a
// database growing from nothing to a few GB changes it once or twice; the
// hashes kept stay within 1 MiB per file.
const growBlocks = 32

// deltaBlockSize is the block size for a file of size bytes whose last
// shipped hashes used base: base's as long as the file did not grow far
// beyond its block count, so a growing file keeps its deltas and appends.
func deltaBlockSize(size int64, base fileHashes) int64 {
	if base.bs != 0 && (size+base.bs-1)/base.bs <= growBlocks*maxBlocks {
		return base.bs
	}
	return blockSizeFor(size)
}

// validBlockSize reports whether bs is one this package uses.
func validBlockSize(bs int64) bool {
	return bs >= MinBlockSize && bs <= BlockSize && bs&(bs-1) == 0
}

// fileHashes is what the source shipped last for a large file: the
// XXH3-128 hash of each block of bs bytes, and the size.
type fileHashes struct {
	size   int64
	mtime  int64 // the file's mtime (ns) when it was shipped
	bs     int64
	hashes []byte
	// sw is set while appends were shipped on a sampled check of the old
	// prefix (sweep.go).
	sw *sweep
}

// hashBlocks returns the hashes of the bs-byte blocks of the first size
// bytes of f (XXH3-128 per block, as the mirror's strict mode). buf must
// hold BlockSize bytes.
func hashBlocks(f *os.File, size, bs int64, buf []byte) ([]byte, error) {
	out := make([]byte, 0, (size+bs-1)/bs*wire.HashSize)
	for off := int64(0); off < size; off += BlockSize {
		n := int(min(BlockSize, size-off))
		if _, err := f.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return nil, err
		}
		out = appendBlockHashes(out, buf[:n], bs)
	}
	return out, nil
}

// appendBlockHashes appends the hashes of the bs-byte blocks of chunk
// (which starts at a multiple of bs) to out.
func appendBlockHashes(out, chunk []byte, bs int64) []byte {
	for i := int64(0); i < int64(len(chunk)); i += bs {
		h := hashOf(chunk[i:min(i+bs, int64(len(chunk)))])
		out = append(out, h[:]...)
	}
	return out
}

// digestOf is what a delta op carries to verify the patched file: the
// hash of the concatenated block hashes (16 bytes instead of all of them).
func digestOf(hashes []byte) []byte {
	h := hashOf(hashes)
	return h[:]
}

// verifyBlocks checks that the first size bytes of f hash to want: the
// block hashes themselves, or their digest when digest is set.
func verifyBlocks(f *os.File, size, blockSize int64, want []byte, digest bool, buf []byte) error {
	if !validBlockSize(blockSize) {
		return fmt.Errorf("block size %d out of range", blockSize)
	}
	got, err := hashBlocks(f, size, blockSize, buf)
	if err != nil {
		return err
	}
	if digest {
		got = digestOf(got)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("patched content differs from the source")
	}
	return nil
}

// hashOf is the block hash.
func hashOf(b []byte) [wire.HashSize]byte { return xxh3.Hash128(b).Bytes() }
