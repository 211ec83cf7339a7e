package codec

import (
	"fmt"

	"github.com/ferry-migrate/ferry/agent/seal"
)

// Payload is a job's payload processing: the compression level of
// outgoing frames, the cipher and the job's secret. It negotiates the
// per-connection keys: the dialing end offers a fresh salt and a key check
// over it, the listening end verifies the check and answers its own salt,
// and both build a Transform over the salts combined (seal.TransferSalt).
type Payload struct {
	Level  Level
	Cipher seal.Cipher
	Secret seal.Secret // never logged: seal.Secret redacts itself
}

// ParsePayload reads the job options' names (compress: off|fast|balanced|
// normal|extreme, encrypt: none|aes|sm4) and key. Errors name the bad
// option, never the key: an unknown level or cipher, or seal.ErrShortSecret
// (wrapped) for a cipher with a key under seal.MinSecretSize.
func ParsePayload(compress, encrypt string, key []byte) (Payload, error) {
	var p Payload
	var err error
	if p.Level, err = ParseLevel(compress); err != nil {
		return p, fmt.Errorf("compress: %w", err)
	}
	if p.Cipher, err = seal.ParseCipher(encrypt); err != nil {
		return p, fmt.Errorf("encrypt: %w", err)
	}
	if p.Cipher != seal.None {
		p.Secret = seal.Secret(key)
		if _, err := seal.KeyCheck(p.Secret, make([]byte, seal.SaltSize)); err != nil {
			return p, fmt.Errorf("payload key: %w", err)
		}
	}
	return p, nil
}

// Offer returns the dialing end's salt and key check (both nil without a
// cipher). Errors: no randomness, or a short secret.
func (p Payload) Offer() (salt, check []byte, err error) {
	if p.Cipher == seal.None {
		return nil, nil, nil
	}
	if salt, err = seal.NewSalt(); err != nil {
		return nil, nil, err
	}
	if check, err = seal.KeyCheck(p.Secret, salt); err != nil {
		return nil, nil, err
	}
	return salt, check, nil
}

// Accept verifies the dialing end's key check over its salt and returns
// the listening end's salt (nil without a cipher). Returns
// seal.ErrKeyMismatch (wrapped) when the check was made with another
// secret or is missing.
func (p Payload) Accept(dialerSalt, check []byte) ([]byte, error) {
	if p.Cipher == seal.None {
		return nil, nil
	}
	if len(check) == 0 {
		return nil, fmt.Errorf("%w: the dialing end sent no key check", seal.ErrKeyMismatch)
	}
	if err := seal.VerifyKeyCheck(p.Secret, dialerSalt, check); err != nil {
		return nil, err
	}
	return seal.NewSalt()
}

// Transform builds the connection's pipeline from both salts, or returns
// nil when neither compression nor a cipher is used. maxFrame bounds
// decoded frames. Errors as for NewTransform.
func (p Payload) Transform(dialerSalt, listenerSalt []byte, dialer bool, maxFrame int) (*Transform, error) {
	if p.Level == Off && p.Cipher == seal.None {
		return nil, nil
	}
	var salt []byte
	if p.Cipher != seal.None {
		salt = seal.TransferSalt(dialerSalt, listenerSalt)
	}
	return NewTransform(TransformConfig{Level: p.Level, Cipher: p.Cipher, Secret: p.Secret, Salt: salt,
		Dialer: dialer, MaxFrameSize: maxFrame})
}
