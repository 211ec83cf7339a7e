package seal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var secret = Secret("correct horse battery staple 42!")

func pair(t *testing.T, c Cipher, salt []byte, dir string) (*Sealer, *Sealer) {
	t.Helper()
	tx, err := NewSealer(c, secret, salt, dir)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := NewSealer(c, bytes.Clone(secret), salt, dir)
	if err != nil {
		t.Fatal(err)
	}
	return tx, rx
}

func salt(t *testing.T) []byte {
	t.Helper()
	s, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseCipher(t *testing.T) {
	for in, want := range map[string]Cipher{"none": None, "": None, "AES": AES, "aes-256-gcm": AES, "sm4": SM4, "SM4-GCM": SM4} {
		if got, err := ParseCipher(in); err != nil || got != want {
			t.Errorf("ParseCipher(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseCipher("des"); err == nil {
		t.Error("des accepted")
	}
}

func TestRoundTripEveryCipher(t *testing.T) {
	for _, c := range []Cipher{None, AES, SM4} {
		tx, rx := pair(t, c, salt(t), "src->dst")
		for seq, size := range []int{0, 1, 15, 16, 17, 4096, 65536, 1 << 20} {
			plain := bytes.Repeat([]byte{byte(seq + 1)}, size)
			frame := tx.Seal(nil, plain, uint64(seq))
			if len(frame) != size+tx.Overhead() {
				t.Errorf("%v: frame %d bytes for %d plaintext", c, len(frame), size)
			}
			if c != None && size >= 16 && bytes.Contains(frame, plain[:16]) {
				t.Errorf("%v: plaintext visible in the sealed frame", c)
			}
			got, err := rx.Open([]byte("prefix"), frame, uint64(seq))
			if err != nil {
				t.Fatalf("%v seq %d: %v", c, seq, err)
			}
			if !bytes.Equal(got, append([]byte("prefix"), plain...)) {
				t.Fatalf("%v seq %d: round trip differs", c, seq)
			}
		}
	}
}

func TestRejections(t *testing.T) {
	for _, c := range []Cipher{AES, SM4} {
		t.Run(c.String(), func(t *testing.T) {
			s := salt(t)
			tx, rx := pair(t, c, s, "src->dst")
			frames := make([][]byte, 4)
			for i := range frames {
				frames[i] = tx.Seal(nil, []byte(fmt.Sprintf("frame number %d with some data", i)), uint64(i))
			}
			if _, err := rx.Open(nil, frames[0], 0); err != nil {
				t.Fatal(err)
			}
			// Replayed: frame 0 again, announced as 0 or disguised as 1.
			if _, err := rx.Open(nil, frames[0], 0); !errors.Is(err, ErrReplayed) {
				t.Errorf("replay: %v, want ErrReplayed", err)
			}
			if _, err := rx.Open(nil, frames[0], 1); !errors.Is(err, ErrReplayed) {
				t.Errorf("replay with a rewritten sequence: %v, want ErrReplayed", err)
			}
			// Reordered: frame 2 before frame 1.
			if _, err := rx.Open(nil, frames[2], 2); !errors.Is(err, ErrReordered) {
				t.Errorf("reorder: %v, want ErrReordered", err)
			}
			if _, err := rx.Open(nil, frames[2], 1); !errors.Is(err, ErrReordered) {
				t.Errorf("reorder with a rewritten sequence: %v, want ErrReordered", err)
			}
			// Tampered: every byte position of the frame, one at a time.
			for i := range frames[1] {
				bad := bytes.Clone(frames[1])
				bad[i] ^= 0x01
				_, err := rx.Open(nil, bad, 1)
				switch {
				case i < tagSize:
					if !errors.Is(err, ErrSpliced) {
						t.Fatalf("byte %d flipped: %v, want ErrSpliced", i, err)
					}
				case i < headerSize:
					if err == nil {
						t.Fatalf("byte %d (sequence) flipped: accepted", i)
					}
				default:
					if !errors.Is(err, ErrTampered) {
						t.Fatalf("byte %d flipped: %v, want ErrTampered", i, err)
					}
				}
			}
			if _, err := rx.Open(nil, frames[1][:len(frames[1])-1], 1); !errors.Is(err, ErrTampered) {
				t.Errorf("truncated: %v, want ErrTampered", err)
			}
			if _, err := rx.Open(nil, frames[1][:10], 1); !errors.Is(err, ErrTampered) {
				t.Errorf("short: %v, want ErrTampered", err)
			}
			// Spliced: frame 1 of the other direction, and of another transfer.
			otherDir, _ := NewSealer(c, secret, s, "dst->src")
			otherDir.Seal(nil, nil, 0)
			fromOtherDir := otherDir.Seal(nil, []byte("spliced"), 1)
			if _, err := rx.Open(nil, fromOtherDir, 1); !errors.Is(err, ErrSpliced) {
				t.Errorf("frame of the other direction: %v, want ErrSpliced", err)
			}
			otherTransfer, _ := NewSealer(c, secret, salt(t), "src->dst")
			otherTransfer.Seal(nil, nil, 0)
			fromOtherTransfer := otherTransfer.Seal(nil, []byte("spliced"), 1)
			if _, err := rx.Open(nil, fromOtherTransfer, 1); !errors.Is(err, ErrSpliced) {
				t.Errorf("frame of another transfer: %v, want ErrSpliced", err)
			}
			// After all rejections, the genuine frames 1..3 still open in order.
			for i := 1; i < 4; i++ {
				if _, err := rx.Open(nil, frames[i], uint64(i)); err != nil {
					t.Fatalf("genuine frame %d after rejections: %v", i, err)
				}
			}
		})
	}
}

func TestSealPanicsOnSequenceReuse(t *testing.T) {
	tx, _ := pair(t, AES, salt(t), "d")
	tx.Seal(nil, []byte("a"), 5)
	defer func() {
		if recover() == nil {
			t.Error("Seal accepted a repeated sequence number")
		}
	}()
	tx.Seal(nil, []byte("b"), 5)
}

func TestKeyCheck(t *testing.T) {
	s := salt(t)
	check, err := KeyCheck(secret, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyKeyCheck(bytes.Clone(secret), s, check); err != nil {
		t.Errorf("same key: %v", err)
	}
	wrong := Secret("correct horse battery staple 43!")
	err = VerifyKeyCheck(wrong, s, check)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("wrong key: %v, want ErrKeyMismatch", err)
	}
	if err.Error() != "payload key mismatch: the key files on the two agents differ" {
		t.Errorf("message %q", err.Error())
	}
	if err := VerifyKeyCheck(secret, salt(t), check); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("other salt: %v, want ErrKeyMismatch", err)
	}
	// A wrong key that got past a hello would still not open frames.
	tx, _ := NewSealer(AES, secret, s, "d")
	rx, _ := NewSealer(AES, wrong, s, "d")
	if _, err := rx.Open(nil, tx.Seal(nil, []byte("data"), 0), 0); err == nil {
		t.Error("frame opened with the wrong key")
	}
}

func TestShortSecretAndSalt(t *testing.T) {
	short := Secret("fifteen bytes!!")
	if _, err := NewSealer(AES, short, salt(t), "d"); !errors.Is(err, ErrShortSecret) {
		t.Errorf("short secret: %v", err)
	}
	if _, err := KeyCheck(short, salt(t)); !errors.Is(err, ErrShortSecret) {
		t.Errorf("short secret key check: %v", err)
	}
	if _, err := NewSealer(SM4, secret, []byte("short"), "d"); err == nil {
		t.Error("short salt accepted")
	}
	if _, err := NewSealer(SM4, secret, salt(t), ""); err == nil {
		t.Error("empty direction accepted")
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.key")
	os.WriteFile(text, []byte("correct horse battery staple 42!\n"), 0o600)
	got, err := ReadKeyFile(text)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("text key with newline: %v", err)
	}
	bin := filepath.Join(dir, "bin.key")
	raw := []byte{0, 1, 2, 0xff, '\n', 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0}
	os.WriteFile(bin, raw, 0o600)
	if got, err := ReadKeyFile(bin); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("binary key: %v", err)
	}
	shortFile := filepath.Join(dir, "short.key")
	os.WriteFile(shortFile, []byte("tiny-secret-xyz\n"), 0o600)
	_, err = ReadKeyFile(shortFile)
	if !errors.Is(err, ErrShortSecret) {
		t.Fatalf("short key file: %v", err)
	}
	if strings.Contains(err.Error(), "tiny-secret") {
		t.Errorf("error reveals the key: %v", err)
	}
}

// TestSecretsNeverPrinted checks that errors and formatted output never
// contain the secret, in any encoding.
func TestSecretsNeverPrinted(t *testing.T) {
	s := salt(t)
	check, _ := KeyCheck(secret, s)
	wrong := Secret("another secret that is long enough")
	var msgs []string
	add := func(err error) {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	add(VerifyKeyCheck(wrong, s, check))
	_, err := NewSealer(AES, Secret("short secret!"), s, "d")
	add(err)
	tx, rx := pair(t, SM4, s, "d")
	f := tx.Seal(nil, []byte("x"), 0)
	f[len(f)-1] ^= 1
	_, err = rx.Open(nil, f, 0)
	add(err)
	_, err = rx.Open(nil, f, 3)
	add(err)
	for _, verb := range []string{"%v", "%s", "%x", "%X", "%q", "%#v", "%+v", "%d"} {
		msgs = append(msgs, fmt.Sprintf(verb, secret), fmt.Sprintf(verb, wrong))
	}
	msgs = append(msgs, fmt.Sprintf("%v", struct{ K Secret }{secret}))
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("loaded", "key", secret)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("loaded", "key", secret)
	msgs = append(msgs, logBuf.String())
	if len(msgs) < 10 {
		t.Fatalf("only %d messages collected", len(msgs))
	}
	for _, m := range msgs {
		for _, k := range []Secret{secret, wrong} {
			for _, enc := range []string{string(k), fmt.Sprintf("%x", []byte(k)), fmt.Sprintf("%v", []byte(k)), string(k[:8])} {
				if strings.Contains(m, enc) {
					t.Errorf("message %q contains the secret", m)
				}
			}
		}
	}
}

func TestTransferSalt(t *testing.T) {
	a, b := []byte("salt of the dialer......"), []byte("salt of the listener....")
	s := TransferSalt(a, b)
	if len(s) < minSaltSize || !bytes.Equal(s, TransferSalt(bytes.Clone(a), bytes.Clone(b))) {
		t.Fatal("TransferSalt is not a deterministic salt")
	}
	for name, other := range map[string][]byte{
		"swapped":        TransferSalt(b, a),
		"dialer differs": TransferSalt([]byte("salt of the dialer.....!"), b),
		"shifted":        TransferSalt(append(bytes.Clone(a), b[0]), b[1:]),
	} {
		if bytes.Equal(s, other) {
			t.Errorf("%s: same transfer salt", name)
		}
	}
}

// TestStatelessSealAndOpen: SealAt produces the frames Seal does; OpenAt
// and OpenInPlace open them under their own number only, in any order,
// and reject tampering like Open.
func TestStatelessSealAndOpen(t *testing.T) {
	for _, c := range []Cipher{AES, SM4} {
		t.Run(c.String(), func(t *testing.T) {
			s := salt(t)
			tx, rx := pair(t, c, s, "src->dst")
			tx2, _ := pair(t, c, s, "src->dst")
			var frames [][]byte
			for seq := range 5 {
				p := bytes.Repeat([]byte{byte(seq)}, 1000+seq)
				a := tx.Seal(nil, p, uint64(seq))
				if b := tx2.SealAt(nil, p, uint64(seq)); !bytes.Equal(a, b) {
					t.Fatalf("frame %d: SealAt differs from Seal", seq)
				}
				frames = append(frames, a)
			}
			for _, seq := range []int{3, 0, 4, 1, 2} { // any order
				got, err := rx.OpenInPlace(bytes.Clone(frames[seq]), uint64(seq))
				if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(seq)}, 1000+seq)) {
					t.Fatalf("frame %d: %v", seq, err)
				}
			}
			if _, err := rx.OpenAt(nil, frames[2], 3); !errors.Is(err, ErrReplayed) {
				t.Errorf("frame 2 as 3: %v, want ErrReplayed", err)
			}
			if _, err := rx.OpenAt(nil, frames[2], 1); !errors.Is(err, ErrReordered) {
				t.Errorf("frame 2 as 1: %v, want ErrReordered", err)
			}
			bad := bytes.Clone(frames[2])
			bad[len(bad)/2] ^= 1
			if _, err := rx.OpenInPlace(bad, 2); !errors.Is(err, ErrTampered) {
				t.Errorf("tampered: %v, want ErrTampered", err)
			}
			other, _ := NewSealer(c, secret, s, "dst->src")
			if _, err := other.OpenAt(nil, frames[2], 2); !errors.Is(err, ErrSpliced) {
				t.Errorf("other direction: %v, want ErrSpliced", err)
			}
		})
	}
}
