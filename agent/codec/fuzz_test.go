package codec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// FuzzDecode: arbitrary input decodes within the limit or fails with
// ErrCorrupt or ErrFrameTooLarge; never a panic.
func FuzzDecode(f *testing.F) {
	c, _ := NewCompressor(Fast)
	out, _ := c.Encode(nil, textData(10_000, 1))
	f.Add(out)
	out, _ = c.Encode(nil, mixedData(64<<10, 1))
	f.Add(out)
	f.Add([]byte{splitMagic, splitShift, 0x80, 0x80, 0x04})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte("not zstd"))
	const limit = 64 << 10
	d, err := NewDecompressor(limit)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := d.Decode(nil, frame)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if len(got) > limit {
			t.Fatalf("%d bytes decoded past the %d limit", len(got), limit)
		}
	})
}

// TestDecodeMutatedFrames feeds 20,000 corrupted variants of a valid zstd
// frame and of a valid split frame (bit flips, truncations, rewritten
// headers, random bodies) to Decode: each either decodes within the limit
// or fails with a documented error.
func TestDecodeMutatedFrames(t *testing.T) {
	c, _ := NewCompressor(Fast)
	defer c.Close()
	for name, src := range map[string][]byte{"zstd": textData(10_000, 1), "split": mixedData(96<<10, 1)} {
		seed, compressed := c.Encode(nil, src)
		if !compressed || (seed[0] == splitMagic) != (name == "split") {
			t.Fatalf("%s: seed compressed = %v, first byte %#x", name, compressed, seed[0])
		}
		t.Run(name, func(t *testing.T) { mutateFrames(t, bytes.Clone(seed), 128<<10) })
	}
}

func mutateFrames(t *testing.T, seed []byte, limit int) {
	d, _ := NewDecompressor(limit)
	defer d.Close()
	r := rand.New(rand.NewPCG(1, 2))
	var failures int
	for range 20_000 {
		in := append([]byte(nil), seed...)
		switch r.IntN(4) {
		case 0:
			for range 1 + r.IntN(4) {
				in[r.IntN(len(in))] ^= byte(1 << r.IntN(8))
			}
		case 1:
			in = in[:r.IntN(len(in))]
		case 2:
			in[1+r.IntN(20)] = byte(r.IntN(256))
		case 3:
			in = in[:4+r.IntN(200)]
			for k := range in[4:] {
				in[4+k] = byte(r.IntN(256))
			}
		}
		got, err := d.Decode(nil, in)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("undocumented error %v", err)
			}
			failures++
			continue
		}
		if len(got) > limit {
			t.Fatalf("%d bytes decoded past the limit", len(got))
		}
	}
	if failures < 10_000 {
		t.Errorf("only %d of 20000 corrupted frames rejected", failures)
	}
}
