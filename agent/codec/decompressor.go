package codec

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// ErrFrameTooLarge is returned by Decode when a frame would decode to more
// than the Decompressor's limit (a decompression bomb or a broken peer).
var ErrFrameTooLarge = errors.New("codec: decoded frame exceeds the size limit")

// ErrCorrupt is returned (wrapped with zstd's reason) by Decode for data that
// is not a valid zstd frame.
var ErrCorrupt = errors.New("codec: corrupt compressed frame")

// Decompressor decodes the compressed frames of one stream, with a bound on
// each frame's decoded size. Not safe for concurrent use, except Stats.
type Decompressor struct {
	limit int
	dec   *zstd.Decoder

	low, high []byte // decodeSplit's buffers

	in, out atomic.Int64
}

// NewDecompressor returns a Decompressor that refuses frames decoding to
// more than maxSize bytes (MaxFrameSize if maxSize <= 0).
func NewDecompressor(maxSize int) (*Decompressor, error) {
	if maxSize <= 0 {
		maxSize = MaxFrameSize
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(maxSize)),
		zstd.WithDecoderMaxWindow(uint64(max(maxSize, zstd.MinWindowSize))),
		zstd.IgnoreChecksum(true),
	)
	if err != nil {
		return nil, fmt.Errorf("codec: create decoder: %w", err)
	}
	return &Decompressor{limit: maxSize, dec: dec}, nil
}

// Decode decompresses one frame produced by Compressor.Encode (compressed ==
// true: a zstd frame or a split frame), appending to dst. Returns
// ErrFrameTooLarge if the frame's content exceeds the limit and ErrCorrupt
// (wrapped) if it is not a valid frame; in both cases nothing is appended.
func (d *Decompressor) Decode(dst, frame []byte) ([]byte, error) {
	var out []byte
	var err error
	if len(frame) > 0 && frame[0] == splitMagic {
		out, err = d.decodeSplit(dst, frame)
	} else {
		out, err = d.zstd(dst, frame)
	}
	if err != nil {
		return dst, err
	}
	if len(out)-len(dst) > d.limit {
		return dst, fmt.Errorf("%w (limit %d bytes)", ErrFrameTooLarge, d.limit)
	}
	d.in.Add(int64(len(frame)))
	d.out.Add(int64(len(out) - len(dst)))
	return out, nil
}

// zstd decodes one zstd frame, appending to dst, with the errors of Decode.
func (d *Decompressor) zstd(dst, frame []byte) ([]byte, error) {
	out, err := d.dec.DecodeAll(frame, dst)
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return dst, fmt.Errorf("%w (limit %d bytes)", ErrFrameTooLarge, d.limit)
		}
		return dst, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return out, nil
}

// Stats returns compressed bytes received (In) and decoded bytes (Out).
func (d *Decompressor) Stats() Stats {
	return Stats{In: d.in.Load(), Out: d.out.Load()}
}

// Close releases the decoder. The Decompressor must not be used afterwards.
func (d *Decompressor) Close() { d.dec.Close() }
