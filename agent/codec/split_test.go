package codec

import (
	"bytes"
	"testing"
)

// TestSplitSendsFewerBytes: data mixing random and text chunks goes out as
// a split frame that round-trips and is smaller than zstd alone makes it,
// at every level.
func TestSplitSendsFewerBytes(t *testing.T) {
	src := mixedData(1<<20, 5)
	d, _ := NewDecompressor(0)
	defer d.Close()
	for _, level := range Levels()[1:] {
		c, _ := NewCompressor(level)
		frame, compressed := c.Encode(nil, src)
		if !compressed || frame[0] != splitMagic {
			t.Fatalf("%v: compressed = %v, first byte %#x; want a split frame", level, compressed, frame[0])
		}
		got, err := d.Decode(nil, frame)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%v: round trip failed: %v", level, err)
		}
		whole := c.enc.EncodeAll(src, nil)
		t.Logf("%v: split %.4f, zstd alone %.4f of the input", level, ratio(frame, src), ratio(whole, src))
		// Text alone compresses to ~0.1 here and random not at all, so
		// 0.5 is the floor; zstd alone loses ~1 point to mixed literals.
		if ratio(frame, src) > ratio(whole, src)-0.005 {
			t.Errorf("%v: split frame %d bytes, zstd alone %d: no gain", level, len(frame), len(whole))
		}
		c.Close()
	}
}

// TestSplitKeepsRepeatsOfRandomChunks: a random block repeated through the
// frame (beside text) still compresses, because the high-entropy stream is
// zstd-compressed too.
func TestSplitKeepsRepeatsOfRandomChunks(t *testing.T) {
	block := randomData(4096, 8)
	text := textData(1<<20, 8)
	var src []byte
	for off := 0; len(src) < 1<<20; off += 4096 {
		src = append(append(src, block...), text[off:off+4096]...)
	}
	c, _ := NewCompressor(Balanced)
	defer c.Close()
	frame, compressed := c.Encode(nil, src)
	if !compressed || frame[0] != splitMagic {
		t.Fatalf("compressed = %v, first byte %#x; want a split frame", compressed, frame[0])
	}
	if r := ratio(frame, src); r > 0.2 {
		t.Errorf("repeated random block: %.3f of the input sent; the high stream was not compressed", r)
	}
	d, _ := NewDecompressor(0)
	defer d.Close()
	if got, err := d.Decode(nil, frame); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("round trip failed: %v", err)
	}
}

// TestUniformFramesAreNotSplit: text, random and zeros stay plain zstd (or
// raw), so split frames cost nothing where they cannot help.
func TestUniformFramesAreNotSplit(t *testing.T) {
	c, _ := NewCompressor(Balanced)
	defer c.Close()
	for name, src := range map[string][]byte{"text": textData(1<<20, 3), "zeros": make([]byte, 1<<20)} {
		frame, compressed := c.Encode(nil, src)
		if !compressed || frame[0] == splitMagic {
			t.Errorf("%s: compressed = %v, first byte %#x; want one zstd frame", name, compressed, frame[0])
		}
	}
}

// TestSplitFrameChecks: frames that lie about their content are refused.
func TestSplitFrameChecks(t *testing.T) {
	src := mixedData(256<<10, 6)
	c, _ := NewCompressor(Fast)
	defer c.Close()
	good, _ := c.Encode(nil, src)
	good = bytes.Clone(good)
	mapAt := 2 + 3 // magic, shift, uvarint(256 KiB) is 3 bytes
	for name, mutate := range map[string]func([]byte) []byte{
		"shift too small": func(b []byte) []byte { b[1] = 8; return b },
		"longer than the limit": func(b []byte) []byte {
			return append([]byte{splitMagic, splitShift, 0x80, 0x80, 0x80, 0x04}, b[5:]...) // 8 MiB
		},
		"class moved":       func(b []byte) []byte { b[mapAt] ^= 1; return b },
		"bits past the end": func(b []byte) []byte { return append([]byte{splitMagic, splitShift, 0xff, 0x07, 0xfe}, b[5:]...) },
		"truncated":         func(b []byte) []byte { return b[:len(b)-100] },
		"low stream overruns": func(b []byte) []byte {
			b[mapAt+256/8+3] = 0x7f
			return b
		},
	} {
		d, _ := NewDecompressor(1 << 20)
		if out, err := d.Decode(nil, mutate(bytes.Clone(good))); err == nil {
			t.Errorf("%s: decoded %d bytes, want an error", name, len(out))
		}
		d.Close()
	}
	d, _ := NewDecompressor(1 << 20)
	defer d.Close()
	if got, err := d.Decode(nil, good); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("unmodified frame: %v", err)
	}
}

func ratio(frame, src []byte) float64 { return float64(len(frame)) / float64(len(src)) }
