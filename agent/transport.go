package agent

import (
	"bufio"
	"net"
	"sync"
)

// recordBuffer sits between a TLS connection and its TCP socket and
// gathers TLS records into large writes. crypto/tls writes every record
// (at most 16 KiB of payload) with its own write(2); on a bulk transfer
// that is 64,000 system calls and as many receiver wake-ups per GiB.
// Buffered, a 1 MiB data frame costs four.
//
// It passes writes straight through until enable is called (the TLS
// handshake must not wait in a buffer), then holds them until Flush or a
// full buffer. wire.Conn flushes it after its own buffer
// (wire.Conn.SetTransportFlush), so message boundaries that are flushed
// still go out at once.
//
// Reads go through a buffer of the same size: crypto/tls reads a record
// header, then its body, each with its own read(2); one read now takes
// whatever the socket holds, up to 256 KiB (a read never waits for more
// than is there, so the handshake is not held up). Only the TLS reader
// reads.
type recordBuffer struct {
	net.Conn
	r *bufio.Reader

	// Guarded by mu.
	mu sync.Mutex
	w  *bufio.Writer // nil until enable
}

// recordBufferSize is the socket write size for bulk data.
const recordBufferSize = 256 << 10

func newRecordBuffer(nc net.Conn) *recordBuffer {
	return &recordBuffer{Conn: nc, r: bufio.NewReaderSize(nc, recordBufferSize)}
}

// Read reads through the read buffer.
func (b *recordBuffer) Read(p []byte) (int, error) { return b.r.Read(p) }

// enable starts buffering (call after the TLS handshake).
func (b *recordBuffer) enable() {
	b.mu.Lock()
	b.w = bufio.NewWriterSize(b.Conn, recordBufferSize)
	b.mu.Unlock()
}

func (b *recordBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil {
		return b.Conn.Write(p)
	}
	return b.w.Write(p)
}

// Flush writes what is buffered to the socket.
func (b *recordBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil {
		return nil
	}
	return b.w.Flush()
}
