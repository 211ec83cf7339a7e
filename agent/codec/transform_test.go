package codec

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ferry-migrate/ferry/agent/seal"
)

var testSecret = seal.Secret("a payload key of enough length")

func transforms(t *testing.T, level Level, c seal.Cipher) (dialer, listener *Transform) {
	t.Helper()
	salt := seal.TransferSalt([]byte("dialer salt 0123456789"), []byte("listener salt 0123456789"))
	var err error
	if dialer, err = NewTransform(TransformConfig{Level: level, Cipher: c, Secret: testSecret, Salt: salt, Dialer: true}); err != nil {
		t.Fatal(err)
	}
	if listener, err = NewTransform(TransformConfig{Level: level, Cipher: c, Secret: testSecret, Salt: salt}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialer.Close(); listener.Close() })
	return dialer, listener
}

// TestTransformEveryCombination round-trips frames in both directions for
// every level × cipher, recycling buffers the way the wire connection does
// (the previous result is passed back as dst, the caller reuses its payload
// buffer).
func TestTransformEveryCombination(t *testing.T) {
	frames := [][]byte{textData(200_000, 1), randomData(1<<20, 2), halfData(300_000, 3), mixedData(270_000, 4), {}, []byte("x"), make([]byte, MaxFrameSize)}
	for _, level := range Levels() {
		for _, c := range []seal.Cipher{seal.None, seal.AES, seal.SM4} {
			t.Run(fmt.Sprintf("%v/%v", level, c), func(t *testing.T) {
				a, b := transforms(t, level, c)
				for _, dir := range []struct {
					name     string
					from, to *Transform
				}{{"dialer->listener", a, b}, {"listener->dialer", b, a}} {
					payload := make([]byte, 0, MaxFrameSize) // reused by the "caller"
					var encDst, decDst []byte
					for seq, f := range frames {
						payload = append(payload[:0], f...)
						out, flags, err := dir.from.Encode(encDst, payload, uint64(seq))
						if err != nil {
							t.Fatal(err)
						}
						encDst = out[:0]
						if (flags&FlagSealed != 0) != (c != seal.None) {
							t.Fatalf("%s frame %d: flags %#x", dir.name, seq, flags)
						}
						wireCopy := bytes.Clone(out)
						got, err := dir.to.Decode(decDst, wireCopy, flags, uint64(seq), len(f))
						if err != nil {
							t.Fatalf("%s frame %d: %v", dir.name, seq, err)
						}
						decDst = got[:0]
						if !bytes.Equal(got, f) {
							t.Fatalf("%s frame %d: round trip differs", dir.name, seq)
						}
					}
				}
			})
		}
	}
}

func TestTransformRejects(t *testing.T) {
	a, b := transforms(t, Balanced, seal.SM4)
	text := textData(100_000, 9)
	out, flags, _ := a.Encode(nil, text, 0)
	frame := bytes.Clone(out)
	if flags != FlagCompressed|FlagSealed {
		t.Fatalf("flags %#x", flags)
	}
	if _, err := b.Decode(nil, frame, FlagCompressed, 0, len(text)); !errors.Is(err, ErrFlags) {
		t.Errorf("seal flag stripped (downgrade): %v, want ErrFlags", err)
	}
	if _, err := b.Decode(nil, frame, flags|0x80, 0, len(text)); !errors.Is(err, ErrFlags) {
		t.Errorf("unknown flag: %v, want ErrFlags", err)
	}
	bad := bytes.Clone(frame)
	bad[len(bad)/2] ^= 4
	if _, err := b.Decode(nil, bad, flags, 0, len(text)); !errors.Is(err, seal.ErrTampered) {
		t.Errorf("tampered: %v, want ErrTampered", err)
	}
	if _, err := b.Decode(nil, frame, flags, 0, len(text)); err != nil {
		t.Fatalf("genuine frame after rejections: %v", err)
	}
	if _, err := b.Decode(nil, frame, flags, 0, len(text)); !errors.Is(err, seal.ErrReplayed) {
		t.Errorf("replayed: %v, want ErrReplayed", err)
	}
	out1, flags1, _ := a.Encode(nil, text, 1)
	if _, err := b.Decode(nil, out1, flags1, 1, len(text)+1); err == nil {
		t.Error("wrong raw length accepted")
	}
	// A frame the dialer sealed cannot be fed back to the dialer.
	if _, err := a.Decode(nil, frame, flags, 0, len(text)); !errors.Is(err, seal.ErrSpliced) {
		t.Errorf("reflected frame: %v, want ErrSpliced", err)
	}
	plainA, plainB := transforms(t, Fast, seal.None)
	out, flags, _ = plainA.Encode(nil, text, 0)
	if _, err := plainB.Decode(nil, out, flags|FlagSealed, 0, len(text)); !errors.Is(err, ErrFlags) {
		t.Errorf("sealed flag without a cipher: %v, want ErrFlags", err)
	}
	// Wrong key on one side: the first frame fails authentication.
	salt := seal.TransferSalt([]byte("dialer salt 0123456789"), []byte("listener salt 0123456789"))
	sender, err := NewTransform(TransformConfig{Level: Fast, Cipher: seal.SM4, Secret: testSecret, Salt: salt, Dialer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	wrongKey, err := NewTransform(TransformConfig{Level: Fast, Cipher: seal.SM4, Secret: seal.Secret("another payload key, long enough"), Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	defer wrongKey.Close()
	out, flags, _ = sender.Encode(nil, text, 0)
	if _, err := wrongKey.Decode(nil, out, flags, 0, len(text)); !errors.Is(err, seal.ErrSpliced) && !errors.Is(err, seal.ErrTampered) {
		t.Errorf("frame under another key: %v, want ErrSpliced or ErrTampered", err)
	}
}

// TestDecodersConcurrent: frames decoded by several Decoders at once, out
// of order among the goroutines, round-trip; a frame given under another
// number than it was sealed as, a tampered frame or a frame with its seal
// flag stripped is rejected by a Decoder (which keeps no sequence state).
func TestDecodersConcurrent(t *testing.T) {
	for _, c := range []seal.Cipher{seal.None, seal.AES, seal.SM4} {
		t.Run(c.String(), func(t *testing.T) {
			a, b := transforms(t, Balanced, c)
			type frame struct {
				seq   uint64
				flags uint8
				wire  []byte
				raw   []byte
			}
			var frames []frame
			for seq := range 64 {
				raw := halfData(100_000+seq, uint64(seq))
				out, flags, err := a.Encode(nil, raw, uint64(seq))
				if err != nil {
					t.Fatal(err)
				}
				frames = append(frames, frame{uint64(seq), flags, bytes.Clone(out), raw})
			}
			errc := make(chan error, 4)
			for w := range 4 {
				go func() {
					d, err := b.NewDecoder()
					if err != nil {
						errc <- err
						return
					}
					defer d.Close()
					for i := w; i < len(frames); i += 4 {
						f := frames[i]
						got, err := d.Decode(nil, bytes.Clone(f.wire), f.flags, f.seq, len(f.raw)) // it opens in place
						if err != nil {
							errc <- fmt.Errorf("frame %d: %w", f.seq, err)
							return
						}
						if !bytes.Equal(got, f.raw) {
							errc <- fmt.Errorf("frame %d differs", f.seq)
							return
						}
					}
					errc <- nil
				}()
			}
			for range 4 {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
			if c == seal.None {
				return
			}
			d, err := b.NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			f := frames[5]
			if _, err := d.Decode(nil, bytes.Clone(f.wire), f.flags, 6, len(f.raw)); !errors.Is(err, seal.ErrReplayed) {
				t.Errorf("frame 5 given as 6: %v, want ErrReplayed", err)
			}
			if _, err := d.Decode(nil, bytes.Clone(f.wire), f.flags, 4, len(f.raw)); !errors.Is(err, seal.ErrReordered) {
				t.Errorf("frame 5 given as 4: %v, want ErrReordered", err)
			}
			bad := bytes.Clone(f.wire)
			bad[len(bad)-3] ^= 1
			if _, err := d.Decode(nil, bad, f.flags, 5, len(f.raw)); !errors.Is(err, seal.ErrTampered) {
				t.Errorf("tampered: %v, want ErrTampered", err)
			}
			if _, err := d.Decode(nil, bytes.Clone(f.wire), f.flags&^FlagSealed, 5, len(f.raw)); !errors.Is(err, ErrFlags) {
				t.Errorf("seal flag stripped: %v, want ErrFlags", err)
			}
			if got, err := d.Decode(nil, bytes.Clone(f.wire), f.flags, 5, len(f.raw)); err != nil || !bytes.Equal(got, f.raw) {
				t.Errorf("genuine frame after rejections: %v", err)
			}
		})
	}
}

// TestEncodersConcurrent: frames encoded by several Encoders at once (each
// seq once) decode in order with the peer's Decode, and the Transform's
// Stats count them.
func TestEncodersConcurrent(t *testing.T) {
	for _, c := range []seal.Cipher{seal.None, seal.AES, seal.SM4} {
		t.Run(c.String(), func(t *testing.T) {
			a, b := transforms(t, Fast, c)
			const n = 48
			raws := make([][]byte, n)
			wires := make([][]byte, n)
			flags := make([]uint8, n)
			errc := make(chan error, 4)
			for w := range 4 {
				go func() {
					e, err := a.NewEncoder()
					if err != nil {
						errc <- err
						return
					}
					for seq := w; seq < n; seq += 4 {
						raws[seq] = halfData(50_000+seq, uint64(seq))
						out, f, err := e.Encode(raws[seq], uint64(seq))
						if err != nil {
							errc <- err
							return
						}
						wires[seq], flags[seq] = bytes.Clone(out), f
					}
					errc <- nil
				}()
			}
			for range 4 {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
			var total int64
			for seq := range n {
				got, err := b.Decode(nil, wires[seq], flags[seq], uint64(seq), len(raws[seq]))
				if err != nil {
					t.Fatalf("frame %d: %v", seq, err)
				}
				if !bytes.Equal(got, raws[seq]) {
					t.Fatalf("frame %d differs", seq)
				}
				total += int64(len(raws[seq]))
			}
			if st := a.Stats(); st.In != total || st.Frames != n || st.Out >= st.In {
				t.Errorf("stats %+v, want %d bytes in %d frames, compressed", st, total, n)
			}
		})
	}
}
