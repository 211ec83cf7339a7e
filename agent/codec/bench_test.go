package codec

import (
	"fmt"
	"testing"

	"github.com/ferry-migrate/ferry/agent/seal"
)

// BenchmarkEncode measures Encode throughput (MB/s of input), allocations
// and the output/input ratio for every level on 1 MiB frames of random,
// half-compressible (random and zeros), mixed (random and text) and text
// data.
func BenchmarkEncode(b *testing.B) {
	const frame = 1 << 20
	data := map[string][]byte{
		"random": randomData(8*frame, 1),
		"half":   halfData(8*frame, 2),
		"mixed":  mixedData(8*frame, 4),
		"text":   textData(8*frame, 3),
	}
	for _, kind := range []string{"random", "half", "mixed", "text"} {
		for _, level := range Levels() {
			b.Run(kind+"/"+level.String(), func(b *testing.B) {
				c, err := NewCompressor(level)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				src := data[kind]
				dst := make([]byte, 0, 2*frame)
				var in, out int64
				b.SetBytes(frame)
				b.ReportAllocs()
				c.Encode(dst, src[:frame]) // warm up: buffers reach their size
				i := 0
				cpu := cpuTime()
				for b.Loop() {
					off := (i % 8) * frame
					res, _ := c.Encode(dst, src[off:off+frame])
					in += frame
					out += int64(len(res))
					i++
				}
				reportCPU(b, cpu, in)
				b.ReportMetric(float64(out)/float64(in), "ratio")
			})
		}
	}
}

// BenchmarkDecode measures decoding throughput (MB/s of decoded output).
func BenchmarkDecode(b *testing.B) {
	const frame = 1 << 20
	for _, kind := range []string{"half", "mixed", "text"} {
		src := map[string][]byte{"half": halfData(frame, 2), "mixed": mixedData(frame, 4), "text": textData(frame, 3)}[kind]
		for _, level := range []Level{Fast, Balanced, Normal, Extreme} {
			b.Run(kind+"/"+level.String(), func(b *testing.B) {
				c, _ := NewCompressor(level)
				defer c.Close()
				d, _ := NewDecompressor(0)
				defer d.Close()
				enc, _ := c.Encode(nil, src)
				dst := make([]byte, 0, frame)
				b.SetBytes(frame)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := d.Decode(dst, enc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkTransform measures the whole per-frame pipeline of a connection,
// Encode on one side and Decode on the other (MB/s of payload), for 1 MiB
// frames.
func BenchmarkTransform(b *testing.B) {
	const frame = 1 << 20
	data := map[string][]byte{"random": randomData(frame, 1), "half": halfData(frame, 2)}
	for _, kind := range []string{"random", "half"} {
		for _, level := range []Level{Off, Fast, Balanced} {
			for _, c := range []seal.Cipher{seal.None, seal.AES, seal.SM4} {
				b.Run(fmt.Sprintf("%s/%v/%v", kind, level, c), func(b *testing.B) {
					salt := seal.TransferSalt([]byte("0123456789abcdef"), []byte("fedcba9876543210"))
					tx, err := NewTransform(TransformConfig{Level: level, Cipher: c, Secret: testSecret, Salt: salt, Dialer: true})
					if err != nil {
						b.Fatal(err)
					}
					rx, _ := NewTransform(TransformConfig{Level: level, Cipher: c, Secret: testSecret, Salt: salt})
					defer tx.Close()
					defer rx.Close()
					src := data[kind]
					b.SetBytes(frame)
					b.ReportAllocs()
					// Warm up: buffers reach their steady size.
					if out, flags, _ := tx.Encode(nil, src, 0); true {
						if _, err := rx.Decode(nil, out, flags, 0, frame); err != nil {
							b.Fatal(err)
						}
					}
					seq := uint64(1)
					cpu := cpuTime()
					for b.Loop() {
						out, flags, _ := tx.Encode(nil, src, seq)
						if _, err := rx.Decode(nil, out, flags, seq, frame); err != nil {
							b.Fatal(err)
						}
						seq++
					}
					reportCPU(b, cpu, frame*int64(seq-1))
				})
			}
		}
	}
}
