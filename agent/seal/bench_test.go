package seal

import (
	"crypto/rand"
	"fmt"
	"testing"
)

// BenchmarkSealOpen measures Seal followed by Open of one frame (MB/s of
// plaintext through both) for each cipher and frame size.
func BenchmarkSealOpen(b *testing.B) {
	for _, c := range []Cipher{AES, SM4} {
		for _, size := range []int{64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%v/%dKiB", c, size>>10), func(b *testing.B) {
				salt, _ := NewSalt()
				tx, _ := NewSealer(c, secret, salt, "d")
				rx, _ := NewSealer(c, secret, salt, "d")
				plain := make([]byte, size)
				rand.Read(plain)
				frame := make([]byte, 0, size+tx.Overhead())
				out := make([]byte, 0, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				seq := uint64(0)
				cpu := cpuTime()
				for b.Loop() {
					frame = tx.Seal(frame[:0], plain, seq)
					var err error
					if out, err = rx.Open(out[:0], frame, seq); err != nil {
						b.Fatal(err)
					}
					seq++
				}
				reportCPU(b, cpu, int64(size)*int64(seq))
			})
		}
	}
}

// BenchmarkSeal measures one direction only (what the sender's core pays).
func BenchmarkSeal(b *testing.B) {
	for _, c := range []Cipher{AES, SM4} {
		for _, size := range []int{64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%v/%dKiB", c, size>>10), func(b *testing.B) {
				salt, _ := NewSalt()
				tx, _ := NewSealer(c, secret, salt, "d")
				plain := make([]byte, size)
				rand.Read(plain)
				frame := make([]byte, 0, size+tx.Overhead())
				b.SetBytes(int64(size))
				b.ReportAllocs()
				seq := uint64(0)
				cpu := cpuTime()
				for b.Loop() {
					frame = tx.Seal(frame[:0], plain, seq)
					seq++
				}
				reportCPU(b, cpu, int64(size)*int64(seq))
			})
		}
	}
}
