package codec

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ferry-migrate/ferry/agent/seal"
)

// Data frame flags set by Transform.Encode. They equal wire.FlagZstd and
// wire.FlagSealed.
const (
	FlagCompressed uint8 = 1 << 0
	FlagSealed     uint8 = 1 << 1
)

// ErrFlags is returned by Transform.Decode for a frame whose flags do not
// match what was negotiated: unknown bits, sealed without a cipher, or —
// when a cipher was negotiated — not sealed (a downgrade).
var ErrFlags = errors.New("codec: data frame flags do not match the negotiated transform")

// TransformConfig describes the payload processing of one connection.
type TransformConfig struct {
	Level  Level       // compression of outgoing frames
	Cipher seal.Cipher // None: frames are not sealed
	Secret seal.Secret // the job's payload key (Cipher != None)
	Salt   []byte      // the connection's salt, e.g. seal.TransferSalt(...)
	// Dialer tells which end of the connection this is; it picks the
	// direction labels so that each direction has its own keys.
	Dialer bool
	// MaxFrameSize bounds decoded frames (MaxFrameSize if 0).
	MaxFrameSize int
}

// Transform is the payload pipeline of one connection, both directions:
// Encode compresses then seals an outgoing frame; Decode opens then
// decompresses an incoming one. It has the method set of wire.FrameCodec.
// Encode and Decode may run concurrently with each other, but each must be
// called by one goroutine at a time.
type Transform struct {
	level  Level
	comp   *Compressor
	own    *Decoder // Decode's
	tx, rx *seal.Sealer
	limit  int

	encBuf, sealBuf []byte // Encode's output buffers

	mu   sync.Mutex
	encs []*Encoder // from NewEncoder, guarded by mu
}

// NewTransform builds the pipeline. Returns an error for an invalid level
// or cipher, or (wrapped from package seal) a short secret or salt.
func NewTransform(cfg TransformConfig) (*Transform, error) {
	t := &Transform{level: cfg.Level, limit: cfg.MaxFrameSize}
	if t.limit <= 0 {
		t.limit = MaxFrameSize
	}
	var err error
	if t.comp, err = NewCompressor(cfg.Level); err != nil {
		return nil, err
	}
	if cfg.Cipher != seal.None {
		out, in := "listener->dialer", "dialer->listener"
		if cfg.Dialer {
			out, in = in, out
		}
		if t.tx, err = seal.NewSealer(cfg.Cipher, cfg.Secret, cfg.Salt, out); err == nil {
			t.rx, err = seal.NewSealer(cfg.Cipher, cfg.Secret, cfg.Salt, in)
		}
		if err != nil {
			t.comp.Close()
			return nil, err
		}
	}
	if t.own, err = newDecoder(t.rx, t.limit); err != nil {
		t.comp.Close()
		return nil, err
	}
	return t, nil
}

// Encode transforms payload, frame number seq of this connection's
// outgoing Data frames, and returns the bytes to send and their flags.
//
// dst is not used: the result lives in the Transform's own buffers, or is
// payload itself when the frame goes out raw and unsealed, and stays valid
// until the next Encode. (Callers that recycle the result as the next dst
// could otherwise hand back the caller's own payload buffer.)
func (t *Transform) Encode(_, payload []byte, seq uint64) (out []byte, flags uint8, err error) {
	out, compressed := t.comp.Encode(t.encBuf[:0], payload)
	if compressed {
		t.encBuf = out[:0]
		flags |= FlagCompressed
	}
	if t.tx != nil {
		out = t.tx.Seal(t.sealBuf[:0], out, seq)
		t.sealBuf = out[:0]
		flags |= FlagSealed
	}
	return out, flags, nil
}

// Decode reverses Encode for frame number seq of the incoming Data frames,
// whose original length was rawLen. Frames must come with seq 0, 1, 2, ...
// (the Transform remembers which it expects). dst is not used (see
// Encode); the result is valid until the next Decode. Errors: ErrFlags
// (wrapped) for flags that do not match the negotiated cipher, the seal
// package's ErrReplayed, ErrReordered, ErrSpliced or ErrTampered,
// ErrFrameTooLarge or ErrCorrupt from decompression, and an error if the
// result is not rawLen bytes long.
func (t *Transform) Decode(_, payload []byte, flags uint8, seq uint64, rawLen int) ([]byte, error) {
	d := t.own
	return d.decode(payload, flags, seq, rawLen, func(frame []byte, seq uint64) ([]byte, error) {
		out, err := t.rx.Open(d.openBuf[:0], frame, seq)
		if err == nil {
			d.openBuf = out[:0]
		}
		return out, err
	})
}

// NewDecoder returns a Decoder for incoming frames that runs on its own
// goroutine, beside others and beside Decode: it has its own decompressor
// and buffers and shares the Transform's keys. Unlike Decode it keeps no
// sequence state: it checks that each frame was sealed as the seq it is
// given, and the caller checks that the seqs it hands out follow each other
// (see Decoder.Decode). Close it when done. Returns an error if the zstd
// decoder cannot be created.
func (t *Transform) NewDecoder() (*Decoder, error) {
	d, err := newDecoder(t.rx, t.limit)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Decoder undoes a Transform's Encode on one goroutine (Transform.NewDecoder).
type Decoder struct {
	decomp          *Decompressor
	rx              *seal.Sealer // shared with the Transform; nil without a cipher
	limit           int
	openBuf, decBuf []byte
}

func newDecoder(rx *seal.Sealer, limit int) (*Decoder, error) {
	decomp, err := NewDecompressor(limit)
	if err != nil {
		return nil, err
	}
	return &Decoder{decomp: decomp, rx: rx, limit: limit}, nil
}

// Decode reverses Encode for the frame the connection received as number
// seq, whose original length was rawLen. It must only be given frames whose
// seqs the caller checked to follow each other on the connection: it
// rejects a frame that was sealed as another number (ErrReplayed or
// ErrReordered), so a frame moved, replayed or renumbered on the wire
// fails here or at the caller's check. dst is not used: the result lives
// in the Decoder's buffers, valid until its next Decode. Errors as for
// Transform.Decode.
//
// It may overwrite payload: a sealed frame is opened in place (saving a
// copy), so the caller must own payload and not need it afterwards.
func (d *Decoder) Decode(_, payload []byte, flags uint8, seq uint64, rawLen int) ([]byte, error) {
	var open func(frame []byte, seq uint64) ([]byte, error)
	if d.rx != nil {
		open = d.rx.OpenInPlace
	}
	return d.decode(payload, flags, seq, rawLen, open)
}

// Close releases the decompressor.
func (d *Decoder) Close() { d.decomp.Close() }

// decode checks flags, opens with open (when sealed) and decompresses.
func (d *Decoder) decode(payload []byte, flags uint8, seq uint64, rawLen int,
	open func(frame []byte, seq uint64) ([]byte, error)) ([]byte, error) {
	if flags&^(FlagCompressed|FlagSealed) != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrFlags, flags)
	}
	sealed := flags&FlagSealed != 0
	switch {
	case sealed && d.rx == nil:
		return nil, fmt.Errorf("%w: frame %d is sealed but no cipher was negotiated", ErrFlags, seq)
	case !sealed && d.rx != nil:
		return nil, fmt.Errorf("%w: frame %d is not sealed but %v was negotiated", ErrFlags, seq, d.rx.Cipher())
	}
	if rawLen < 0 || rawLen > d.limit {
		return nil, fmt.Errorf("%w: frame %d announces %d bytes", ErrFrameTooLarge, seq, rawLen)
	}
	data := payload
	if sealed {
		var err error
		if data, err = open(payload, seq); err != nil {
			return nil, err
		}
	}
	if flags&FlagCompressed != 0 {
		out, err := d.decomp.Decode(d.decBuf[:0], data)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", seq, err)
		}
		d.decBuf = out[:0]
		data = out
	}
	if len(data) != rawLen {
		return nil, fmt.Errorf("codec: frame %d decodes to %d bytes, header says %d", seq, len(data), rawLen)
	}
	return data, nil
}

// NewEncoder returns an Encoder for outgoing frames that runs on its own
// goroutine, beside others: it has its own compressor and buffers and
// shares the Transform's keys; its counters add to Stats. Unlike Encode it
// keeps no sequence state: the caller must give each seq to one frame only
// (see Encoder.Encode). Returns an error if the zstd encoder cannot be
// created.
func (t *Transform) NewEncoder() (*Encoder, error) {
	comp, err := NewCompressor(t.level)
	if err != nil {
		return nil, err
	}
	e := &Encoder{comp: comp, tx: t.tx}
	t.mu.Lock()
	t.encs = append(t.encs, e)
	t.mu.Unlock()
	return e, nil
}

// Encoder does a Transform's Encode on one goroutine (Transform.NewEncoder).
type Encoder struct {
	comp            *Compressor
	tx              *seal.Sealer // shared with the Transform; nil without a cipher
	encBuf, sealBuf []byte
}

// Encode compresses then seals payload as frame number seq, which the
// caller must use for this frame only (a number reused would reuse a GCM
// nonce): e.g. numbers handed out once each by the connection. The result
// lives in the Encoder's buffers, or is payload itself when the frame goes
// out raw and unsealed, valid until its next Encode.
func (e *Encoder) Encode(payload []byte, seq uint64) (out []byte, flags uint8, err error) {
	out, compressed := e.comp.Encode(e.encBuf[:0], payload)
	if compressed {
		e.encBuf = out[:0]
		flags |= FlagCompressed
	}
	if e.tx != nil {
		out = e.tx.SealAt(e.sealBuf[:0], out, seq)
		e.sealBuf = out[:0]
		flags |= FlagSealed
	}
	return out, flags, nil
}

// Stats returns the outgoing compression counters (bytes before and
// after) of Encode and of every Encoder.
func (t *Transform) Stats() Stats {
	st := t.comp.Stats()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.encs {
		s := e.comp.Stats()
		st.In, st.Out, st.Frames, st.RawFrames = st.In+s.In, st.Out+s.Out, st.Frames+s.Frames, st.RawFrames+s.RawFrames
	}
	return st
}

// Close releases the compressors and the decompressor. No Encoder may be
// used afterwards.
func (t *Transform) Close() {
	t.comp.Close()
	t.own.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.encs {
		e.comp.Close()
	}
}
