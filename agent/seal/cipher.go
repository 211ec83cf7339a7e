// Package seal encrypts the data channel's payload frames with a per-job
// key, on top of TLS: AES-256-GCM or SM4-GCM.
//
// Both agents hold the same secret (a key file of at least 16 bytes). For
// each transfer the sender draws a random salt and sends it in the hello
// together with KeyCheck(secret, salt); the receiver calls VerifyKeyCheck,
// so a wrong key fails before any data moves. Each direction of the
// transfer then has its own Sealer, whose cipher key, nonce prefix and
// stream tag are derived with HKDF-SHA256 from (secret, salt, cipher,
// direction).
//
// A sealed frame is
//
//	stream tag (8) | seq (8, big endian) | ciphertext | GCM tag (16)
//
// with nonce = prefix (4) | seq (8) and the header (tag and seq) as
// additional data. The receiver's Sealer expects seq 0, 1, 2, ... and tells
// replayed, reordered, spliced (another transfer's or direction's) and
// tampered frames apart with distinct errors.
//
// Secrets never appear in errors or logs: Secret redacts itself when
// formatted or logged.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"strings"

	"github.com/emmansun/gmsm/sm4"
)

// Cipher is a payload cipher.
type Cipher uint8

// The ciphers. None passes frames through unchanged (TLS still protects
// the channel).
const (
	None Cipher = iota
	AES         // AES-256-GCM
	SM4         // SM4-GCM (GB/T 32907), accelerated with AES-NI on amd64
)

var cipherNames = [...]string{None: "none", AES: "aes", SM4: "sm4"}

// String returns the cipher's flag name.
func (c Cipher) String() string {
	if int(c) < len(cipherNames) {
		return cipherNames[c]
	}
	return fmt.Sprintf("Cipher(%d)", c)
}

// ParseCipher parses none|aes|sm4 (case-insensitive; also "", "off",
// "aes-256-gcm", "sm4-gcm"). Returns an error naming the valid values
// otherwise.
func ParseCipher(s string) (Cipher, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none", "off":
		return None, nil
	case "aes", "aes-256-gcm", "aes256gcm":
		return AES, nil
	case "sm4", "sm4-gcm", "sm4gcm":
		return SM4, nil
	}
	return None, fmt.Errorf("seal: unknown cipher %q (want none, aes or sm4)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (c Cipher) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler via ParseCipher.
func (c *Cipher) UnmarshalText(b []byte) error {
	v, err := ParseCipher(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// keySize is the cipher key length.
func (c Cipher) keySize() int {
	if c == SM4 {
		return 16
	}
	return 32
}

func (c Cipher) newAEAD(key []byte) (cipher.AEAD, error) {
	var block cipher.Block
	var err error
	switch c {
	case AES:
		block, err = aes.NewCipher(key)
	case SM4:
		block, err = sm4.NewCipher(key)
	default:
		return nil, fmt.Errorf("seal: cipher %v has no AEAD", c)
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %v cipher: %w", c, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %v GCM: %w", c, err)
	}
	return aead, nil
}
