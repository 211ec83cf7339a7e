package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Split frames.
//
// zstd codes all the literals of a block (up to 128 KiB) with one Huffman
// table. In data that mixes incompressible and compressible bytes at a finer
// grain than that — a disk image whose 4 KiB blocks alternate between
// compressed files and text, records that carry a random token or an
// encrypted blob beside plain fields — the random bytes dominate the table
// and the compressible part's literals cost ~8 bits each instead of ~5. A
// split frame sorts the frame's 1 KiB chunks by their byte entropy,
// compresses the low-entropy chunks together and the high-entropy ones
// apart (stored when they do not shrink), and records which chunk went
// where. On the benchmark's half-compressible set (2 KiB random, 2 KiB log
// lines per 4 KiB) it sends 0.541 of the input instead of 0.551 at
// balanced, and is faster: zstd passes over the high-entropy stream as raw
// blocks instead of searching it for matches among the text.
//
// Only frames whose sampled chunks are mixed are split; uniform frames
// (all text, all random) go through zstd whole as before. Repeated
// high-entropy data still compresses: the high stream is zstd too.
//
// Layout of a split frame (what Compressor.Encode returns with compressed
// == true, before any sealing):
//
//	splitMagic                        1 byte (a zstd frame starts with 0x28)
//	chunk shift                       1 byte, splitMinShift..splitMaxShift
//	decoded length                    uvarint
//	class bitmap                      1 bit per chunk, LSB first; 1 = high
//	low stream's length               4 bytes, little endian
//	low stream                        one zstd frame: the low chunks in order
//	high stream's mode                1 byte: splitStored or splitZstd
//	high stream                       the high chunks in order, as they are
//	                                  or as one zstd frame
const (
	splitMagic    = 0xF5
	splitShift    = 10 // the encoder's chunk: 1 KiB
	splitChunk    = 1 << splitShift
	splitMinShift = 9
	splitMaxShift = 16

	splitStored = 0
	splitZstd   = 1

	// splitBits: a chunk is high-entropy above this many bits per byte.
	// Random and already compressed data measure 7.8 on 1 KiB (the
	// estimate's ceiling for 1,024 samples of 256 values), text 4-5,
	// machine code and base64 about 6.
	splitBits = 7.0
	// splitSamples chunks, spread over the frame, decide whether it is
	// mixed enough to split (classifying every chunk costs ~0.6 ms/MiB).
	splitSamples = 16
	splitMin     = 64 << 10 // smaller frames are not split
)

// xlog2x[c] = c·log2(c), for the entropy of chunks of up to splitChunk bytes.
var xlog2x = func() (t [splitChunk + 1]float32) {
	for c := 2; c <= splitChunk; c++ {
		t[c] = float32(float64(c) * math.Log2(float64(c)))
	}
	return t
}()

// highEntropy reports whether chunk (at most splitChunk bytes) has more than
// splitBits of Shannon entropy per byte, from its byte histogram:
// H = log2 n − Σ c·log2 c / n.
func highEntropy(chunk []byte) bool {
	n := len(chunk)
	if n < 64 {
		return false
	}
	var h [256]uint16
	for _, b := range chunk {
		h[b]++
	}
	var s float32
	for _, c := range h {
		s += xlog2x[c]
	}
	return float64(s) < float64(n)*(math.Log2(float64(n))-splitBits)
}

// mixed samples src's chunks: true when some look high-entropy and some
// low, i.e. splitting may pay.
func mixed(src []byte) bool {
	if len(src) < splitMin {
		return false
	}
	step := (len(src) - splitChunk) / (splitSamples - 1)
	high := 0
	for i := range splitSamples {
		if highEntropy(src[i*step : i*step+splitChunk]) {
			high++
		}
	}
	return high > 0 && high < splitSamples
}

// encodeSplit appends src as a split frame to dst, or as one zstd frame
// when all its chunks fall in one class.
func (c *Compressor) encodeSplit(dst, src []byte) []byte {
	n := len(src)
	chunks := (n + splitChunk - 1) >> splitShift
	c.classes = append(c.classes[:0], make([]byte, (chunks+7)/8)...)
	c.low, c.high = c.low[:0], c.high[:0]
	for i := range chunks {
		chunk := src[i<<splitShift : min((i+1)<<splitShift, n)]
		if highEntropy(chunk) {
			c.classes[i/8] |= 1 << (i % 8)
			c.high = append(c.high, chunk...)
		} else {
			c.low = append(c.low, chunk...)
		}
	}
	if len(c.low) == 0 || len(c.high) == 0 {
		return c.enc.EncodeAll(src, dst)
	}
	out := append(dst, splitMagic, splitShift)
	out = binary.AppendUvarint(out, uint64(n))
	out = append(out, c.classes...)
	at := len(out)
	out = c.enc.EncodeAll(c.low, append(out, 0, 0, 0, 0))
	binary.LittleEndian.PutUint32(out[at:], uint32(len(out)-at-4))
	out = append(out, splitZstd)
	at = len(out)
	out = c.enc.EncodeAll(c.high, out)
	if len(out)-at >= len(c.high)-len(c.high)>>minSavingShift {
		out = append(out[:at-1], splitStored)
		out = append(out, c.high...)
	}
	return out
}

// decodeSplit appends the content of split frame to dst. Errors wrap
// ErrCorrupt or ErrFrameTooLarge; dst is returned unchanged with them.
func (d *Decompressor) decodeSplit(dst, frame []byte) ([]byte, error) {
	corrupt := func(why string) ([]byte, error) {
		return dst, fmt.Errorf("%w: split frame: %s", ErrCorrupt, why)
	}
	if len(frame) < 2 {
		return corrupt("truncated header")
	}
	shift := uint(frame[1])
	if shift < splitMinShift || shift > splitMaxShift {
		return corrupt(fmt.Sprintf("chunk shift %d", shift))
	}
	size, k := binary.Uvarint(frame[2:])
	if k <= 0 {
		return corrupt("bad length")
	}
	if size > uint64(d.limit) {
		return dst, fmt.Errorf("%w (limit %d bytes)", ErrFrameTooLarge, d.limit)
	}
	n := int(size)
	p := frame[2+k:]
	chunks := (n + 1<<shift - 1) >> shift
	if len(p) < (chunks+7)/8+4 {
		return corrupt("truncated class map")
	}
	classes := p[:(chunks+7)/8]
	p = p[len(classes):]
	if chunks%8 != 0 && classes[len(classes)-1]>>(chunks%8) != 0 {
		return corrupt("class bits past the last chunk")
	}
	highLen := 0
	for i := range chunks {
		if classes[i/8]&(1<<(i%8)) != 0 {
			highLen += min(n-i<<shift, 1<<shift)
		}
	}
	lowEnc := binary.LittleEndian.Uint32(p)
	p = p[4:]
	if uint64(lowEnc) >= uint64(len(p)) {
		return corrupt("low stream overruns the frame")
	}
	var err error
	if d.low, err = d.zstd(d.low[:0], p[:lowEnc]); err != nil {
		return dst, err
	}
	if len(d.low) != n-highLen {
		return corrupt(fmt.Sprintf("low stream holds %d bytes, class map says %d", len(d.low), n-highLen))
	}
	mode, p := p[lowEnc], p[lowEnc+1:]
	high := p
	switch mode {
	case splitStored:
	case splitZstd:
		if d.high, err = d.zstd(d.high[:0], p); err != nil {
			return dst, err
		}
		high = d.high
	default:
		return corrupt(fmt.Sprintf("high stream mode %d", mode))
	}
	if len(high) != highLen {
		return corrupt(fmt.Sprintf("high stream holds %d bytes, class map says %d", len(high), highLen))
	}
	out, low := dst, d.low
	for i := range chunks {
		m := min(n-i<<shift, 1<<shift)
		if classes[i/8]&(1<<(i%8)) != 0 {
			out, high = append(out, high[:m]...), high[m:]
		} else {
			out, low = append(out, low[:m]...), low[m:]
		}
	}
	return out, nil
}
