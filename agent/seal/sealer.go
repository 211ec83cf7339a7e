package seal

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
)

// Frame layout sizes.
const (
	tagSize    = 8
	seqSize    = 8
	headerSize = tagSize + seqSize
	gcmTagSize = 16
)

// Errors of Open; each is returned wrapped with the sequence numbers
// involved (never key material).
var (
	// ErrReplayed: the frame's sequence number was already accepted.
	ErrReplayed = errors.New("seal: replayed frame")
	// ErrReordered: the frame comes ahead of one not yet received.
	ErrReordered = errors.New("seal: reordered frame")
	// ErrSpliced: the frame belongs to another transfer or direction.
	ErrSpliced = errors.New("seal: frame from another stream")
	// ErrTampered: the frame fails authentication (modified, truncated).
	ErrTampered = errors.New("seal: frame failed authentication")
)

// Sealer seals (sender side) or opens (receiver side) the frames of one
// direction of one transfer. Not safe for concurrent use.
type Sealer struct {
	cipher Cipher
	aead   cipher.AEAD
	tag    [tagSize]byte
	nonce  [12]byte // prefix (4) | seq (8); the prefix is fixed per Sealer
	prefix [4]byte  // the nonce prefix, read by OpenAt (which must not touch nonce)
	header [headerSize]byte

	sealed   bool   // Seal has been called
	lastSeal uint64 // last seq sealed
	expected uint64 // next seq Open accepts
}

// NewSealer derives the keys of one direction of a transfer. Both sides
// call it with the same cipher, secret, salt and direction (any non-empty
// label, e.g. "src->dst"). For None it returns a pass-through Sealer and
// ignores secret and salt. Returns ErrShortSecret (wrapped) for a secret
// under MinSecretSize, or an error for a short salt or an empty direction.
func NewSealer(c Cipher, secret Secret, salt []byte, direction string) (*Sealer, error) {
	if c == None {
		return &Sealer{cipher: None}, nil
	}
	if c != AES && c != SM4 {
		return nil, fmt.Errorf("seal: invalid cipher %d", c)
	}
	if direction == "" {
		return nil, errors.New("seal: empty direction label")
	}
	n := c.keySize()
	material, err := derive(secret, salt, infoPrefix+c.String()+" "+direction, n+4+tagSize)
	if err != nil {
		return nil, err
	}
	aead, err := c.newAEAD(material[:n])
	if err != nil {
		return nil, err
	}
	s := &Sealer{cipher: c, aead: aead}
	copy(s.nonce[:4], material[n:n+4])
	copy(s.prefix[:], material[n:n+4])
	copy(s.tag[:], material[n+4:])
	clear(material)
	return s, nil
}

// Cipher returns the Sealer's cipher.
func (s *Sealer) Cipher() Cipher { return s.cipher }

// Overhead is the number of bytes a sealed frame adds to its plaintext.
func (s *Sealer) Overhead() int {
	if s.cipher == None {
		return 0
	}
	return headerSize + gcmTagSize
}

// Seal encrypts plaintext as frame number seq and appends the sealed frame
// to dst; the spare capacity of dst must not overlap plaintext. Frames must be
// sealed with seq 0, 1, 2, ... (the receiver accepts nothing else); Seal
// panics if seq is not greater than the previous one, because reusing a
// nonce would break GCM. For None it appends plaintext unchanged.
func (s *Sealer) Seal(dst, plaintext []byte, seq uint64) []byte {
	if s.cipher == None {
		return append(dst, plaintext...)
	}
	if s.sealed && seq <= s.lastSeal {
		panic(fmt.Sprintf("seal: Seal called with seq %d after %d: nonce reuse", seq, s.lastSeal))
	}
	s.sealed, s.lastSeal = true, seq
	start := len(dst)
	dst = append(dst, s.tag[:]...)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	binary.BigEndian.PutUint64(s.nonce[4:], seq)
	// The header is copied out because Seal may reallocate dst.
	copy(s.header[:], dst[start:])
	return s.aead.Seal(dst, s.nonce[:], plaintext, s.header[:])
}

// Open authenticates and decrypts frame, which the caller received as
// frame number seq (the sequence number its wire header carries, or its
// own count), and appends the plaintext to dst. Frames must arrive with
// seq 0, 1, 2, ...; on success the next one is expected. Errors (wrapped,
// nothing appended, expectation unchanged):
// ErrReplayed if seq (or the sequence sealed into the frame) was already
// accepted, ErrReordered if it is ahead of the expected one, ErrSpliced if
// the frame was sealed for another transfer or direction, ErrTampered if
// it fails authentication. For None it appends frame unchanged.
func (s *Sealer) Open(dst, frame []byte, seq uint64) ([]byte, error) {
	if s.cipher == None {
		return append(dst, frame...), nil
	}
	if err := s.checkSeq(seq); err != nil {
		return dst, err
	}
	if len(frame) < headerSize+gcmTagSize {
		return dst, fmt.Errorf("%w: frame %d is %d bytes, shorter than the %d-byte minimum", ErrTampered, seq, len(frame), headerSize+gcmTagSize)
	}
	if !bytes.Equal(frame[:tagSize], s.tag[:]) {
		return dst, fmt.Errorf("%w: frame %d", ErrSpliced, seq)
	}
	sealedSeq := binary.BigEndian.Uint64(frame[tagSize:headerSize])
	if err := s.checkSeq(sealedSeq); err != nil {
		return dst, err
	}
	binary.BigEndian.PutUint64(s.nonce[4:], sealedSeq)
	out, err := s.aead.Open(dst, s.nonce[:], frame[headerSize:], frame[:headerSize])
	if err != nil {
		return dst, fmt.Errorf("%w: frame %d", ErrTampered, seq)
	}
	s.expected++
	return out, nil
}

// SealAt seals plaintext as frame number seq, like Seal, but keeps no
// state, so several goroutines may seal at once (also beside Seal). The
// caller must never seal two frames under one seq — that would reuse a GCM
// nonce — e.g. by taking the numbers from one counter, each once.
func (s *Sealer) SealAt(dst, plaintext []byte, seq uint64) []byte {
	if s.cipher == None {
		return append(dst, plaintext...)
	}
	var nonce [12]byte
	copy(nonce[:4], s.prefix[:])
	binary.BigEndian.PutUint64(nonce[4:], seq)
	var header [headerSize]byte
	copy(header[:tagSize], s.tag[:])
	binary.BigEndian.PutUint64(header[tagSize:], seq)
	dst = append(dst, header[:]...)
	return s.aead.Seal(dst, nonce[:], plaintext, header[:])
}

// OpenAt authenticates and decrypts frame as frame number seq and appends
// the plaintext to dst, like Open, but keeps no state: it checks only that
// the frame was sealed as number seq (for this transfer and direction), so
// the caller must make sure seq itself is the next one expected — e.g. the
// reader of the connection checks the wire sequence numbers in order and
// hands the frames to several goroutines that open them concurrently.
// Safe for concurrent use (also with Open). Errors (wrapped, nothing
// appended): ErrReplayed or ErrReordered if the frame was sealed as an
// earlier or a later number than seq, ErrSpliced, ErrTampered as for Open.
func (s *Sealer) OpenAt(dst, frame []byte, seq uint64) ([]byte, error) {
	if s.cipher == None {
		return append(dst, frame...), nil
	}
	if len(frame) < headerSize+gcmTagSize {
		return dst, fmt.Errorf("%w: frame %d is %d bytes, shorter than the %d-byte minimum", ErrTampered, seq, len(frame), headerSize+gcmTagSize)
	}
	if !bytes.Equal(frame[:tagSize], s.tag[:]) {
		return dst, fmt.Errorf("%w: frame %d", ErrSpliced, seq)
	}
	switch sealedSeq := binary.BigEndian.Uint64(frame[tagSize:headerSize]); {
	case sealedSeq < seq:
		return dst, fmt.Errorf("%w: frame sealed as %d, received as %d", ErrReplayed, sealedSeq, seq)
	case sealedSeq > seq:
		return dst, fmt.Errorf("%w: frame sealed as %d, received as %d", ErrReordered, sealedSeq, seq)
	}
	var nonce [12]byte
	copy(nonce[:4], s.prefix[:])
	binary.BigEndian.PutUint64(nonce[4:], seq)
	out, err := s.aead.Open(dst, nonce[:], frame[headerSize:], frame[:headerSize])
	if err != nil {
		return dst, fmt.Errorf("%w: frame %d", ErrTampered, seq)
	}
	return out, nil
}

// OpenInPlace is OpenAt decrypting into frame's own storage: the
// plaintext it returns aliases frame, whose content is lost either way
// (also on an error). Same contract and errors as OpenAt.
func (s *Sealer) OpenInPlace(frame []byte, seq uint64) ([]byte, error) {
	if s.cipher == None || len(frame) < headerSize+gcmTagSize {
		return s.OpenAt(nil, frame, seq)
	}
	return s.OpenAt(frame[headerSize:headerSize], frame, seq)
}

func (s *Sealer) checkSeq(seq uint64) error {
	switch {
	case seq < s.expected:
		return fmt.Errorf("%w: frame %d, expected %d", ErrReplayed, seq, s.expected)
	case seq > s.expected:
		return fmt.Errorf("%w: frame %d, expected %d", ErrReordered, seq, s.expected)
	}
	return nil
}

// Expected returns the sequence number Open accepts next.
func (s *Sealer) Expected() uint64 { return s.expected }
