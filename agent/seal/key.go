package seal

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// MinSecretSize is the shortest accepted secret, in bytes.
const MinSecretSize = 16

// SaltSize is the size of the salts NewSalt draws.
const SaltSize = 32

// minSaltSize is the shortest salt accepted by the derivations.
const minSaltSize = 16

const infoPrefix = "ferry/seal/v1 "

// ErrShortSecret is returned for a secret shorter than MinSecretSize.
var ErrShortSecret = errors.New("seal: payload key too short")

// ErrKeyMismatch is returned by VerifyKeyCheck when the peer derived its
// check value from a different secret.
var ErrKeyMismatch = errors.New("payload key mismatch: the key files on the two agents differ")

// Secret is the shared payload secret. It redacts itself in fmt output and
// slog records, so it cannot leak through a log line or an error by mistake.
type Secret []byte

// String returns a redacted placeholder.
func (s Secret) String() string { return fmt.Sprintf("[secret: %d bytes]", len(s)) }

// GoString returns a redacted placeholder (for %#v).
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that every verb (%x, %v, %s, %q, ...)
// prints the placeholder.
func (s Secret) Format(f fmt.State, _ rune) { f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

func checkSecret(secret Secret) error {
	if len(secret) < MinSecretSize {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrShortSecret, len(secret), MinSecretSize)
	}
	return nil
}

// ReadKeyFile reads a key file: any bytes (binary or text) of at least
// MinSecretSize. One trailing newline ("\n" or "\r\n") is removed so that
// a text key written by an editor matches one written without. Returns an
// error naming the path and, for a short key, its length; never the content.
func ReadKeyFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal: read key file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if err := checkSecret(b); err != nil {
		return nil, fmt.Errorf("%w (key file %s)", err, path)
	}
	return b, nil
}

// NewSalt returns SaltSize random bytes for a new transfer.
func NewSalt() ([]byte, error) {
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("seal: random salt: %w", err)
	}
	return salt, nil
}

// derive returns n bytes of HKDF-SHA256(secret, salt, info).
func derive(secret Secret, salt []byte, info string, n int) ([]byte, error) {
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	if len(salt) < minSaltSize {
		return nil, fmt.Errorf("seal: salt is %d bytes, need at least %d", len(salt), minSaltSize)
	}
	out, err := hkdf.Key(sha256.New, secret, salt, info, n)
	if err != nil {
		return nil, fmt.Errorf("seal: derive keys: %w", err)
	}
	return out, nil
}

// KeyCheck returns the value the sender puts in the hello next to salt, from
// which the receiver can tell whether both hold the same secret. It reveals
// nothing usable about the secret or the derived cipher keys. Returns
// ErrShortSecret (wrapped) or an error for a short salt.
func KeyCheck(secret Secret, salt []byte) ([]byte, error) {
	return derive(secret, salt, infoPrefix+"key-check", 32)
}

// VerifyKeyCheck compares the peer's check value with the one derived from
// our secret. Returns ErrKeyMismatch when they differ, ErrShortSecret
// (wrapped) or a salt error when the inputs are unusable.
func VerifyKeyCheck(secret Secret, salt, check []byte) error {
	want, err := KeyCheck(secret, salt)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want, check) != 1 {
		return ErrKeyMismatch
	}
	return nil
}

// TransferSalt combines the salts both ends drew for a connection into the
// salt of its Sealers, so that each end contributes freshness even when the
// hellos cross (each hello carries its own salt and KeyCheck over it).
// dialerSalt is the salt of the end that opened the connection.
func TransferSalt(dialerSalt, listenerSalt []byte) []byte {
	h := sha256.New()
	h.Write([]byte(infoPrefix + "transfer-salt"))
	var n [8]byte
	for _, s := range [][]byte{dialerSalt, listenerSalt} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write(s)
	}
	return h.Sum(nil)
}
