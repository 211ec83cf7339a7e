package codec

import (
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

// TestDecodeMutatedFrames feeds 20,000 corrupted variants of a valid frame
// (bit flips, truncations, rewritten headers, random bodies) to Decode:
// each either decodes within the limit or fails with a documented error.
func TestDecodeMutatedFrames(t *testing.T) {
	c, _ := NewCompressor(Fast)
	defer c.Close()
	seed, compressed := c.Encode(nil, textData(10_000, 1))
	if !compressed {
		t.Fatal("seed not compressed")
	}
	seed = append([]byte(nil), seed...)
	const limit = 64 << 10
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
			in[4+r.IntN(10)] = byte(r.IntN(256))
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
