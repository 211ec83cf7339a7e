package codec

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{
		"off": Off, "": Off, "none": Off, "fast": Fast, "Balanced": Balanced,
		" normal ": Normal, "EXTREME": Extreme,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"max", "1", "fastest"} {
		if _, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) accepted", bad)
		}
	}
	for _, l := range Levels() {
		back, err := ParseLevel(l.String())
		if err != nil || back != l {
			t.Errorf("%v does not round-trip through its name", l)
		}
	}
}

func TestRoundTripEveryLevel(t *testing.T) {
	inputs := map[string][]byte{
		"empty":  {},
		"byte":   {42},
		"text":   textData(300_000, 1),
		"half":   halfData(1<<20, 2),
		"random": randomData(1<<20, 3),
		"zeros":  make([]byte, MaxFrameSize),
		"small":  textData(1000, 4),
	}
	dec, err := NewDecompressor(0)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, level := range Levels() {
		c, err := NewCompressor(level)
		if err != nil {
			t.Fatal(err)
		}
		for name, src := range inputs {
			orig := bytes.Clone(src)
			frame, compressed := c.Encode(nil, src)
			if !bytes.Equal(src, orig) {
				t.Fatalf("%v/%s: Encode modified its input", level, name)
			}
			got := frame
			if compressed {
				if len(frame) >= len(src) {
					t.Errorf("%v/%s: compressed frame %d bytes for %d input", level, name, len(frame), len(src))
				}
				got, err = dec.Decode(nil, frame)
				if err != nil {
					t.Fatalf("%v/%s: %v", level, name, err)
				}
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("%v/%s: round trip differs", level, name)
			}
			wantCompressed := level != Off && (name == "text" || name == "half" || name == "zeros" || name == "small")
			if compressed != wantCompressed {
				t.Errorf("%v/%s: compressed = %v, want %v", level, name, compressed, wantCompressed)
			}
		}
		c.Close()
	}
}

func TestRandomPassesRawUnchanged(t *testing.T) {
	for _, level := range Levels() {
		c, err := NewCompressor(level)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{100, 60 << 10, 1 << 20} {
			src := randomData(n, uint64(n))
			out, compressed := c.Encode(make([]byte, 0, n), src)
			if compressed {
				t.Fatalf("%v: random %d bytes reported compressed", level, n)
			}
			if &out[0] != &src[0] || len(out) != len(src) {
				t.Fatalf("%v: raw frame is not src itself", level)
			}
		}
		st := c.Stats()
		if st.In != st.Out || st.Frames != 3 || st.RawFrames != 3 {
			t.Errorf("%v: stats %+v, want In==Out and 3 raw frames", level, st)
		}
		c.Close()
	}
}

func TestStatsCountBeforeAndAfter(t *testing.T) {
	c, _ := NewCompressor(Balanced)
	defer c.Close()
	src := textData(200_000, 9)
	out, compressed := c.Encode(nil, src)
	if !compressed {
		t.Fatal("text not compressed")
	}
	rnd := randomData(10_000, 1)
	c.Encode(nil, rnd)
	st := c.Stats()
	if st.In != int64(len(src)+len(rnd)) || st.Out != int64(len(out)+len(rnd)) {
		t.Errorf("stats %+v, want In=%d Out=%d", st, len(src)+len(rnd), len(out)+len(rnd))
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("needs a build without -race: sync.Pool drops items at random under the race detector")
	}
	for _, level := range []Level{Fast, Balanced} {
		c, _ := NewCompressor(level)
		d, _ := NewDecompressor(0)
		for name, src := range map[string][]byte{"text": textData(1<<20, 5), "random": randomData(1<<20, 6), "half": halfData(1<<20, 7), "mixed": mixedData(1<<20, 8)} {
			dst := make([]byte, 0, 2<<20)
			plain := make([]byte, 0, 2<<20)
			frame, _ := c.Encode(dst, src) // warm up
			allocs := testing.AllocsPerRun(20, func() {
				var compressed bool
				frame, compressed = c.Encode(dst, src)
				if compressed {
					if _, err := d.Decode(plain, frame); err != nil {
						t.Fatal(err)
					}
				}
			})
			if allocs > 0 {
				t.Errorf("%v/%s: %.1f allocations per Encode+Decode", level, name, allocs)
			}
		}
		c.Close()
		d.Close()
	}
}

func TestBombRejected(t *testing.T) {
	const limit = 1 << 20
	dec, err := NewDecompressor(limit)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	zeros := make([]byte, 64<<20)

	// One-shot frame that declares its 64 MiB content size.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	declared := enc.EncodeAll(zeros, nil)
	// Streaming frame that does not declare its size.
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(1<<20))
	w.Write(zeros)
	w.Close()
	// Many small frames concatenated, each under the limit but not in total.
	one := enc.EncodeAll(zeros[:limit/2], nil)
	var many []byte
	for range 8 {
		many = append(many, one...)
	}
	// Exactly at the limit is fine.
	atLimit := enc.EncodeAll(zeros[:limit], nil)

	for name, frame := range map[string][]byte{"declared": declared, "streamed": buf.Bytes(), "concatenated": many} {
		if len(frame) > 64<<10 {
			t.Fatalf("%s: bomb is %d bytes, not a bomb", name, len(frame))
		}
		out, err := dec.Decode(nil, frame)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("%s: err = %v, want ErrFrameTooLarge", name, err)
		}
		if len(out) != 0 {
			t.Errorf("%s: %d bytes returned with the error", name, len(out))
		}
	}
	out, err := dec.Decode(nil, atLimit)
	if err != nil || len(out) != limit {
		t.Errorf("frame at the limit: %d bytes, %v", len(out), err)
	}
	if _, err := dec.Decode(nil, []byte("definitely not zstd")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("garbage: err = %v, want ErrCorrupt", err)
	}
}
