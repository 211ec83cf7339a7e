package seal

import (
	"errors"
	"testing"
)

// FuzzOpen: arbitrary frames are rejected with one of the documented
// errors and never panic or get accepted.
func FuzzOpen(f *testing.F) {
	salt := []byte("0123456789abcdef0123456789abcdef")
	tx, _ := NewSealer(SM4, secret, salt, "d")
	f.Add(tx.Seal(nil, []byte("hello"), 0), uint64(0))
	f.Add([]byte{}, uint64(0))
	f.Add(make([]byte, 40), uint64(1))
	f.Fuzz(func(t *testing.T, frame []byte, seq uint64) {
		for _, c := range []Cipher{AES, SM4} {
			rx, err := NewSealer(c, secret, salt, "other direction")
			if err != nil {
				t.Fatal(err)
			}
			_, err = rx.Open(nil, frame, seq)
			if err == nil {
				t.Fatalf("%v: forged frame accepted", c)
			}
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrSpliced) && !errors.Is(err, ErrReplayed) && !errors.Is(err, ErrReordered) {
				t.Fatalf("%v: undocumented error %v", c, err)
			}
		}
	})
}
