package codec

import (
	"fmt"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// MaxFrameSize is the largest decoded frame a Decompressor accepts by
// default, and the zstd window the Compressor uses. Data frames on the wire
// must not exceed it.
const MaxFrameSize = 4 << 20

// Incompressibility probe: frames of at least probeMin bytes are first
// sampled at probeCount evenly spread places of probeSize bytes; if no
// sample shrinks below probeRatio of its size, the frame is sent raw without
// compressing the whole. Random data thus costs ~4 small EncodeAll calls.
// The probe misses only redundancy at distances larger than a sample (e.g. a
// random block repeated far apart in one frame), which is rare in file data.
const (
	probeMin   = 64 << 10
	probeSize  = 4 << 10
	probeCount = 4
	probeRatio = 0.97
)

// minSaving: a compressed frame is kept only if it saves at least 1/64 of
// the input (~1.6 %); below that decoding costs more than the bytes saved.
const minSavingShift = 6

// Stats counts payload bytes before and after compression. Raw frames count
// the same on both sides.
type Stats struct {
	In, Out           int64 // bytes given to Encode, bytes it returned
	Frames, RawFrames int64 // frames encoded, of which sent raw
}

// Compressor compresses the frames of one stream. It holds one zstd encoder
// and reuses it, so Encode does not allocate when dst has room. Not safe
// for concurrent use, except Stats.
type Compressor struct {
	level Level
	enc   *zstd.Encoder
	probe []byte

	classes, low, high []byte // encodeSplit's buffers

	in, out, frames, raw atomic.Int64
}

// NewCompressor returns a Compressor for level. Level Off yields a
// Compressor whose Encode always returns src raw.
func NewCompressor(level Level) (*Compressor, error) {
	c := &Compressor{level: level}
	if level == Off {
		return c, nil
	}
	if level > Extreme {
		return nil, fmt.Errorf("codec: invalid level %d", level)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level.zstd()),
		zstd.WithEncoderConcurrency(1),
		// TLS and the optional AEAD already protect integrity.
		zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(MaxFrameSize),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, fmt.Errorf("codec: create %s encoder: %w", level, err)
	}
	c.enc = enc
	c.probe = make([]byte, 0, probeSize+probeSize/2)
	return c, nil
}

// Level returns the compressor's level.
func (c *Compressor) Level() Level { return c.level }

// Encode compresses src, appending to dst: one zstd frame, or a split frame
// (split.go) when src mixes high- and low-entropy chunks. When compression is off, the
// data looks incompressible, or the result would not save at least ~1.6 %,
// it returns src itself (not a copy) and compressed == false; the caller
// sends it raw. src is never modified; dst's spare capacity must not
// overlap src. Frames longer than MaxFrameSize are compressed too, but a
// default Decompressor refuses them.
func (c *Compressor) Encode(dst, src []byte) (out []byte, compressed bool) {
	c.frames.Add(1)
	c.in.Add(int64(len(src)))
	if c.enc == nil || len(src) == 0 || c.incompressible(src) {
		return c.rawFrame(src)
	}
	if mixed(src) {
		out = c.encodeSplit(dst, src)
	} else {
		out = c.enc.EncodeAll(src, dst)
	}
	if len(out)-len(dst) >= len(src)-len(src)>>minSavingShift {
		return c.rawFrame(src)
	}
	c.out.Add(int64(len(out) - len(dst)))
	return out, true
}

func (c *Compressor) rawFrame(src []byte) ([]byte, bool) {
	c.raw.Add(1)
	c.out.Add(int64(len(src)))
	return src, false
}

// incompressible samples large frames; see probeMin.
func (c *Compressor) incompressible(src []byte) bool {
	if len(src) < probeMin {
		return false
	}
	step := (len(src) - probeSize) / (probeCount - 1)
	for i := range probeCount {
		sample := src[i*step : i*step+probeSize]
		c.probe = c.enc.EncodeAll(sample, c.probe[:0])
		if float64(len(c.probe)) < probeRatio*float64(len(sample)) {
			return false
		}
	}
	return true
}

// Stats returns the byte counters so far. Safe to call concurrently with
// Encode.
func (c *Compressor) Stats() Stats {
	return Stats{In: c.in.Load(), Out: c.out.Load(), Frames: c.frames.Load(), RawFrames: c.raw.Load()}
}

// Close releases the encoder. The Compressor must not be used afterwards.
func (c *Compressor) Close() error {
	if c.enc == nil {
		return nil
	}
	return c.enc.Close()
}
