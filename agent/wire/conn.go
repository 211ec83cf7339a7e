package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// FrameCodec transforms Data payloads (compression, sealing). Encode returns
// the transformed payload (which may alias dst's storage) and the flags that
// describe it; Decode reverses it. seq is the frame's sequence number, to be
// bound into authenticated data by sealing codecs. A nil FrameCodec sends
// payloads unchanged.
type FrameCodec interface {
	Encode(dst, payload []byte, seq uint64) (out []byte, flags uint8, err error)
	Decode(dst, payload []byte, flags uint8, seq uint64, rawLen int) ([]byte, error)
}

// PayloadDecoder undoes a FrameCodec's Encode on one goroutine, for Data
// frames that ReadMsg returned still encoded (Conn.DeferDataDecode). It
// must reject a frame that was not encoded as number seq; the Conn has
// checked that the seqs follow each other.
type PayloadDecoder interface {
	Decode(dst, payload []byte, flags uint8, seq uint64, rawLen int) ([]byte, error)
	Close()
}

// PayloadEncoder does a FrameCodec's Encode on one goroutine, for Data
// frames that WriteData encodes outside the connection's lock. It keeps no
// sequence state: the Conn gives each seq to one frame only.
type PayloadEncoder interface {
	Encode(payload []byte, seq uint64) (out []byte, flags uint8, err error)
}

// ConcurrentCodec is a FrameCodec whose Data frames can be encoded, and
// decoded, by several goroutines at once, each with a PayloadEncoder or
// PayloadDecoder of its own.
type ConcurrentCodec interface {
	FrameCodec
	NewPayloadDecoder() (PayloadDecoder, error)
	NewPayloadEncoder() (PayloadEncoder, error)
}

// Limiter paces outgoing payload bytes (bandwidth limiting). WaitN blocks
// until n bytes may be sent or ctx ends.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// Conn is a framed message connection. WriteMsg, WriteData and Flush may be
// called from several goroutines; ReadMsg from one goroutine at a time.
type Conn struct {
	nc net.Conn
	cr countingReader
	cw countingWriter

	// Guarded by wmu.
	wmu     sync.Mutex
	bw      *bufio.Writer
	enc     Encoder
	seq     uint64
	codec   FrameCodec
	codeBuf []byte
	// ccodec is codec when it is a ConcurrentCodec: WriteData encodes
	// outside the lock with one of encFree (or a new encoder), then waits
	// for its turn: frames go out in seq order, wnext is the next to go
	// (wcond signals changes), werr the first failure, after which every
	// payload write fails.
	ccodec  ConcurrentCodec
	encFree []PayloadEncoder
	wnext   uint64
	wcond   *sync.Cond
	werr    error
	// Payload bytes written, before and after the codec (atomic).
	payRaw, payEnc atomic.Int64

	// Used only by the reading goroutine.
	br      *bufio.Reader
	rbuf    []byte
	rpool   sync.Pool // frame buffers handed out by DetachPayload
	rseq    uint64
	dcodec  FrameCodec
	decoBuf []byte
	// deferData: ReadMsg returns Data payloads still encoded (set before
	// the first Data frame, by the reading goroutine).
	deferData bool

	limiter Limiter
	// lowerFlush flushes a buffer beneath nc (guarded by wmu); nil if none.
	lowerFlush func() error
}

// NewConn wraps nc. Buffer sizes are generous for bulk transfer.
func NewConn(nc net.Conn) *Conn {
	c := &Conn{nc: nc}
	c.cr.r = nc
	c.cw.w = nc
	// A small read buffer: a frame's header is read through it, a large
	// payload then mostly bypasses it (bufio reads straight into the frame
	// buffer once its own buffer is drained), which saves a copy.
	c.br = bufio.NewReaderSize(&c.cr, 32<<10)
	c.bw = bufio.NewWriterSize(&c.cw, 256<<10)
	c.wcond = sync.NewCond(&c.wmu)
	return c
}

// SetCodec installs the payload codec for both directions. Call before any
// Data frame is exchanged.
func (c *Conn) SetCodec(fc FrameCodec) {
	c.wmu.Lock()
	c.codec = fc
	c.ccodec, _ = fc.(ConcurrentCodec)
	c.encFree = nil
	c.wmu.Unlock()
	c.dcodec = fc
}

// SetTransportFlush tells the Conn that nc writes into a buffer of its own
// (e.g. one gathering TLS records into large socket writes) and how to
// flush it: Send and Flush call f after flushing the Conn's buffer. Call
// before the Conn is used concurrently.
func (c *Conn) SetTransportFlush(f func() error) {
	c.wmu.Lock()
	c.lowerFlush = f
	c.wmu.Unlock()
}

// flushLocked flushes the write buffer and the transport's.
func (c *Conn) flushLocked() error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	if c.lowerFlush != nil {
		return c.lowerFlush()
	}
	return nil
}

// SetLimiter installs a bandwidth limiter for outgoing Data payloads.
func (c *Conn) SetLimiter(l Limiter) { c.limiter = l }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.nc.Close() }

// BytesWritten is the number of bytes written to the connection so far.
func (c *Conn) BytesWritten() int64 { return c.cw.n.Load() }

// BytesRead is the number of bytes read from the connection so far.
func (c *Conn) BytesRead() int64 { return c.cr.n.Load() }

// WriteMsg buffers one message. Call Flush to send buffered messages.
func (c *Conn) WriteMsg(m Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(m)
}

// Send writes one message and flushes.
func (c *Conn) Send(m Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writeLocked(m); err != nil {
		return err
	}
	return c.flushLocked()
}

// Flush sends buffered messages.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

func (c *Conn) writeLocked(m Message) (err error) {
	c.enc.b = c.enc.b[:0]
	var payload []byte
	if d, ok := m.(*Data); ok {
		// Encode everything but the payload, then write the payload
		// straight from the caller's buffer.
		c.enc.Uvarint(d.ID)
		c.enc.Varint(d.Offset)
		c.enc.Uvarint(d.Seq)
		c.enc.Byte(d.Flags)
		c.enc.Uvarint(uint64(d.RawLen))
		c.enc.Uvarint(uint64(len(d.Payload)))
		payload = d.Payload
	} else if sc, ok := m.(*SyncChunk); ok {
		// File content of a sync: encoded like a Data frame (the same
		// sequence numbers, codec and flags), written the same way.
		seq := c.seq
		c.seq++
		defer func() { c.doneLocked(err) }() // after the frame is buffered
		if err = c.awaitTurnLocked(seq); err != nil {
			return err
		}
		var out []byte
		var flags uint8
		if out, flags, err = c.encodeLocked(sc.Data, seq); err != nil {
			return err
		}
		c.enc.b = c.enc.b[:0] // awaitTurnLocked may have let another writer use it
		c.enc.Varint(sc.Off)
		c.enc.Uvarint(seq)
		c.enc.Byte(flags)
		c.enc.Uvarint(uint64(len(sc.Data)))
		c.enc.Uvarint(uint64(len(out)))
		payload = out
	} else {
		m.Encode(&c.enc)
	}
	n := 1 + len(c.enc.b) + len(payload)
	if n > MaxFrameSize {
		return fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrFrameTooLarge, m.Kind(), n, MaxFrameSize)
	}
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(n))
	hdr[4] = byte(m.Kind())
	if _, err := c.bw.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := c.bw.Write(c.enc.b); err != nil {
		return err
	}
	if len(payload) >= bigPayload {
		// Flush what is buffered and hand the payload to the connection
		// directly instead of copying it through the buffer.
		if err := c.bw.Flush(); err != nil {
			return err
		}
		_, err := c.cw.Write(payload)
		return err
	}
	if len(payload) > 0 {
		if _, err := c.bw.Write(payload); err != nil {
			return err
		}
	}
	return nil
}

// bigPayload is the payload size from which a Data frame bypasses the
// write buffer.
const bigPayload = 64 << 10

// WriteData sends raw as content of file id at off: it waits for the
// bandwidth limiter, assigns the sequence number, applies the codec
// (outside the connection's lock when the codec is a ConcurrentCodec, so
// that several writers compress and seal in parallel) and buffers the
// frame; frames go out in sequence order. raw may be reused once
// WriteData returns. After a payload write failed, every later one fails
// with that error.
func (c *Conn) WriteData(ctx context.Context, id uint64, off int64, raw []byte) error {
	if len(raw) > MaxDataPayload {
		return fmt.Errorf("%w: data payload of %d bytes", ErrFrameTooLarge, len(raw))
	}
	if c.limiter != nil {
		if err := c.limiter.WaitN(ctx, len(raw)); err != nil {
			return err
		}
	}
	c.wmu.Lock()
	seq := c.seq
	c.seq++
	cc := c.ccodec
	if cc == nil {
		// Encode (if at all) and write under the lock.
		defer c.wmu.Unlock()
		err := c.awaitTurnLocked(seq)
		d := Data{ID: id, Offset: off, Seq: seq, RawLen: uint32(len(raw))}
		if err == nil {
			d.Payload, d.Flags, err = c.encodeLocked(raw, seq)
		}
		if err == nil {
			err = c.writeLocked(&d)
		}
		c.doneLocked(err)
		return err
	}
	// Compress and seal outside the lock, on this goroutine, so that the
	// connection's writers encode in parallel; then write in seq order.
	var enc PayloadEncoder
	if n := len(c.encFree); n > 0 {
		enc, c.encFree = c.encFree[n-1], c.encFree[:n-1]
	}
	c.wmu.Unlock()
	var err error
	if enc == nil {
		enc, err = cc.NewPayloadEncoder()
	}
	d := Data{ID: id, Offset: off, Seq: seq, RawLen: uint32(len(raw))}
	if err == nil {
		if d.Payload, d.Flags, err = enc.Encode(raw, seq); err != nil {
			err = fmt.Errorf("encode frame %d: %w", seq, err)
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if werr := c.awaitTurnLocked(seq); err == nil {
		err = werr
	}
	if err == nil {
		c.payRaw.Add(int64(len(raw)))
		c.payEnc.Add(int64(len(d.Payload)))
		err = c.writeLocked(&d)
	}
	c.doneLocked(err)
	if enc != nil {
		c.encFree = append(c.encFree, enc) // d.Payload, in its buffers, is written
	}
	return err
}

// awaitTurnLocked waits (releasing wmu meanwhile) until every payload
// frame numbered below seq was written or failed; it returns the first
// failure of the connection's payload writes.
func (c *Conn) awaitTurnLocked(seq uint64) error {
	for c.wnext != seq {
		c.wcond.Wait()
	}
	return c.werr
}

// doneLocked ends the turn of the current payload frame (err: it failed).
func (c *Conn) doneLocked(err error) {
	if err != nil && c.werr == nil {
		c.werr = err
	}
	c.wnext++
	c.wcond.Broadcast()
}

// encodeLocked applies the codec to raw, payload frame number seq; the
// result is valid until the next call.
func (c *Conn) encodeLocked(raw []byte, seq uint64) ([]byte, uint8, error) {
	if len(raw) > MaxDataPayload {
		return nil, 0, fmt.Errorf("%w: payload of %d bytes", ErrFrameTooLarge, len(raw))
	}
	c.payRaw.Add(int64(len(raw)))
	if c.codec == nil {
		c.payEnc.Add(int64(len(raw)))
		return raw, 0, nil
	}
	out, flags, err := c.codec.Encode(c.codeBuf[:0], raw, seq)
	if err != nil {
		return nil, 0, fmt.Errorf("encode frame %d: %w", seq, err)
	}
	c.codeBuf = out[:0]
	c.payEnc.Add(int64(len(out)))
	return out, flags, nil
}

// PayloadBytes returns the payload bytes of the Data and SyncChunk frames
// written so far, before (raw) and after (encoded) the codec: compression
// and sealing. Safe to call from any goroutine.
func (c *Conn) PayloadBytes() (raw, encoded int64) { return c.payRaw.Load(), c.payEnc.Load() }

// ReadMsg reads the next message. An Error message is returned as a message
// (use (*Error).Err); transport errors and malformed frames as errors.
// Data and SyncChunk payloads alias an internal buffer valid until the
// next ReadMsg; their Seq has been checked and the codec undone (for Data
// unless DeferDataDecode was called).
func (c *Conn) ReadMsg() (Message, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: peer sent %d bytes (limit %d)", ErrFrameTooLarge, n, MaxFrameSize)
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: empty frame", ErrProtocol)
	}
	m, err := newMessage(Kind(hdr[4]))
	if err != nil {
		return nil, err
	}
	body := int(n) - 1
	if c.rbuf == nil {
		if b, ok := c.rpool.Get().(*[]byte); ok {
			c.rbuf = *b
		}
	}
	if cap(c.rbuf) < body {
		c.rbuf = make([]byte, body, max(body, 64<<10))
	}
	c.rbuf = c.rbuf[:body]
	if _, err := io.ReadFull(c.br, c.rbuf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	d := NewDecoder(c.rbuf)
	if err := m.Decode(d); err != nil {
		return nil, fmt.Errorf("decode %s: %w", m.Kind(), err)
	}
	if d.Remaining() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after %s", ErrProtocol, d.Remaining(), m.Kind())
	}
	switch m := m.(type) {
	case *Data:
		var err error
		if m.Payload, err = c.readPayload(m.Payload, m.Flags, m.Seq, m.RawLen, c.deferData); err != nil {
			return nil, err
		}
	case *SyncChunk:
		var err error
		if m.Data, err = c.readPayload(m.Data, m.Flags, m.Seq, m.RawLen, false); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readPayload checks that a payload frame (Data, SyncChunk) is the next in
// sequence and, unless deferred, undoes the codec.
func (c *Conn) readPayload(p []byte, flags uint8, seq uint64, rawLen uint32, deferred bool) ([]byte, error) {
	if seq != c.rseq {
		return nil, fmt.Errorf("%w: payload frame seq %d, want %d", ErrProtocol, seq, c.rseq)
	}
	c.rseq++
	if c.dcodec == nil && flags != 0 {
		return nil, fmt.Errorf("%w: payload frame flags %#x without a negotiated codec", ErrProtocol, flags)
	}
	if deferred && c.dcodec != nil {
		return p, nil // the PayloadDecoder checks the rest
	}
	if c.dcodec != nil {
		out, err := c.dcodec.Decode(c.decoBuf[:0], p, flags, seq, int(rawLen))
		if err != nil {
			return nil, fmt.Errorf("decode frame %d: %w", seq, err)
		}
		c.decoBuf = out[:0]
		p = out
	}
	if len(p) != int(rawLen) {
		return nil, fmt.Errorf("%w: payload frame of %d bytes, header says %d", ErrProtocol, len(p), rawLen)
	}
	return p, nil
}

// DeferDataDecode makes ReadMsg return Data frames with their payload still
// encoded (Flags and RawLen as sent): it only checks that their sequence
// numbers follow each other, and the caller decodes each payload with a
// PayloadDecoder from NewPayloadDecoder, e.g. on the goroutine that writes
// the file, so that decompression and decryption do not serialise with
// the reading of the connection. It returns false, and changes nothing,
// when the installed codec cannot decode concurrently. Call from the
// reading goroutine, after SetCodec and before the first Data frame.
func (c *Conn) DeferDataDecode() bool {
	if c.dcodec != nil {
		if _, ok := c.dcodec.(ConcurrentCodec); !ok {
			return false
		}
	}
	c.deferData = true
	return true
}

// NewPayloadDecoder returns a decoder for Data payloads that ReadMsg
// returned encoded (DeferDataDecode), for use by one goroutine: without a
// codec it only checks the length. Errors: the codec's.
func (c *Conn) NewPayloadDecoder() (PayloadDecoder, error) {
	if cc, ok := c.dcodec.(ConcurrentCodec); ok {
		return cc.NewPayloadDecoder()
	}
	return rawDecoder{}, nil
}

// rawDecoder is the PayloadDecoder of a Conn without a codec.
type rawDecoder struct{}

func (rawDecoder) Decode(_, p []byte, flags uint8, seq uint64, rawLen int) ([]byte, error) {
	if flags != 0 || len(p) != rawLen {
		return nil, fmt.Errorf("%w: payload frame %d: flags %#x, %d bytes, header says %d", ErrProtocol, seq, flags, len(p), rawLen)
	}
	return p, nil
}

func (rawDecoder) Close() {}

// DetachPayload gives the caller ownership of d's payload (d must be the
// message the last ReadMsg returned), sparing a copy: the next ReadMsg reads
// into another buffer. It returns false, and the payload stays borrowed,
// when the payload does not live in the frame buffer (a codec produced it).
// Hand the buffer back with Recycle when done.
func (c *Conn) DetachPayload(d *Data) ([]byte, bool) {
	if len(d.Payload) == 0 || len(c.rbuf) < len(d.Payload) || &d.Payload[0] != &c.rbuf[len(c.rbuf)-len(d.Payload)] {
		return nil, false
	}
	b := c.rbuf
	c.rbuf = nil
	return b, true
}

// CopyPayload returns a copy of d's payload in a buffer of the Conn's
// pool (DetachPayload's, when that cannot detach: a codec produced the
// payload), sparing a fresh allocation per frame. Hand it back with
// Recycle when done.
func (c *Conn) CopyPayload(d *Data) []byte {
	var b []byte
	if p, ok := c.rpool.Get().(*[]byte); ok {
		b = *p
	}
	return append(b[:0], d.Payload...)
}

// Recycle returns a buffer obtained from DetachPayload or CopyPayload for
// reuse. Safe to call from any goroutine.
func (c *Conn) Recycle(b []byte) {
	if cap(b) > 0 {
		b = b[:0]
		c.rpool.Put(&b)
	}
}

// Handshake sends local's Hello and reads the peer's. It fails with
// ErrVersionMismatch (naming both versions) when the versions differ, and
// with the peer's error if the peer refused us.
func (c *Conn) Handshake(local *Hello) (*Hello, error) {
	errc := make(chan error, 1)
	go func() { errc <- c.Send(local) }() // net.Pipe writes block until read
	m, rerr := c.ReadMsg()
	werr := <-errc
	if rerr != nil {
		return nil, fmt.Errorf("read hello: %w", rerr)
	}
	peer, ok := m.(*Hello)
	if !ok {
		return nil, unexpected(m, "Hello")
	}
	if err := checkVersion(local, peer); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, fmt.Errorf("send hello: %w", werr)
	}
	return peer, nil
}

// Expect reads the next message and returns it as T, or an error if it is
// an Error message or of another kind.
func Expect[T Message](c *Conn) (T, error) {
	var zero T
	m, err := c.ReadMsg()
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, unexpected(m, zero.Kind().String())
	}
	return t, nil
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
