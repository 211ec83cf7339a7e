// Package codec compresses the data channel's payload frames with zstd.
//
// Each frame is compressed on its own (zstd EncodeAll), so a receiver can
// decode any frame without the previous ones and resume mid-stream. A frame
// that does not shrink is sent raw: Compressor.Encode reports compressed ==
// false and the wire marks the frame as raw.
package codec

import (
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Level is a payload compression level.
type Level uint8

// The levels the product offers and the zstd speed each maps to, with the
// throughput measured by bench_test.go on 1 MiB frames (one AMD EPYC core;
// input MB/s and output/input ratio):
//
//	level     zstd                    half-compressible   text
//	fast      SpeedFastest            1400 MB/s  0.502     240 MB/s  0.260
//	balanced  SpeedDefault             645 MB/s  0.501     220 MB/s  0.236
//	normal    SpeedBetterCompression   435 MB/s  0.502     165 MB/s  0.225
//	extreme   SpeedBestCompression      36 MB/s  0.501      38 MB/s  0.207
//
// Random data is detected by sampling and sent raw at every level for a few
// microseconds per MiB. extreme is only worth it on links slower than
// ~250 Mbit/s per core.
//
// On the benchmark's half-compressible set (integration/bench: each 4 KiB
// block is 2 KiB of random bytes and 2 KiB of log lines), measured on the
// first 64 MiB in 1 MiB frames (one core of a shared 2-core VM, so the
// speeds are rough), output/input and input MB/s, one zstd frame per frame
// before split frames existed, and now:
//
//	level     zstd                    zstd alone      with split frames
//	fast      SpeedFastest            0.5593   405    0.5389   304-540
//	balanced  SpeedDefault            0.5515   310    0.5409   296-520
//	normal    SpeedBetterCompression  0.5495   170    0.5389   195
//	extreme   SpeedBestCompression    0.5469    25    0.5370    75
//
// zstd alone loses ~1 point there because each zstd block (128 KiB) codes
// the log lines' literals with a Huffman table dominated by the random
// bytes; frame size barely matters (balanced: 0.5527 with 256 KiB frames,
// 0.5512 with 4 MiB) and neither does literal entropy coding of match-less
// blocks (WithAllLitEntropyCompression). Split frames (split.go) compress
// the two kinds of chunk apart. What a mirror sends beyond the compressed
// payload is small: frame headers and protocol messages 0.003%, TLS 1.3 22
// bytes per 16 KiB record (0.13%).
const (
	Off Level = iota
	Fast
	Balanced
	Normal
	Extreme
)

var levelNames = [...]string{Off: "off", Fast: "fast", Balanced: "balanced", Normal: "normal", Extreme: "extreme"}

// Levels lists every level, in increasing compression.
func Levels() []Level { return []Level{Off, Fast, Balanced, Normal, Extreme} }

// String returns the level's flag name.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", l)
}

// ParseLevel parses off|fast|balanced|normal|extreme (case-insensitive; the
// empty string means off). Returns an error naming the valid values otherwise.
func ParseLevel(s string) (Level, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "none" {
		return Off, nil
	}
	for i, n := range levelNames {
		if s == n {
			return Level(i), nil
		}
	}
	return Off, fmt.Errorf("codec: unknown compression level %q (want off, fast, balanced, normal or extreme)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler via ParseLevel.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case Fast:
		return zstd.SpeedFastest
	case Balanced:
		return zstd.SpeedDefault
	case Normal:
		return zstd.SpeedBetterCompression
	default:
		return zstd.SpeedBestCompression
	}
}
