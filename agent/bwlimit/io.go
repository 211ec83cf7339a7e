package bwlimit

import (
	"context"
	"io"
)

// ioChunk is the largest piece Reader and Writer account for at once, so
// that a large buffer is paced smoothly instead of in one debt.
const ioChunk = 64 << 10

type reader struct {
	ctx context.Context
	r   io.Reader
	lim *Limiter
}

// Reader returns r limited by lim: each Read returns at most 64 KiB and then
// waits for the bytes it read. A Read returns the bytes read together with
// ctx's error if ctx ends while waiting.
func Reader(ctx context.Context, r io.Reader, lim *Limiter) io.Reader {
	return &reader{ctx: ctx, r: r, lim: lim}
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) > ioChunk {
		p = p[:ioChunk]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.lim.WaitN(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

type writer struct {
	ctx context.Context
	w   io.Writer
	lim *Limiter
}

// Writer returns w limited by lim: writes are split into pieces of at most
// 64 KiB, each waiting for its tokens before it is written. Returns ctx's
// error, with the count written so far, if ctx ends while waiting.
func Writer(ctx context.Context, w io.Writer, lim *Limiter) io.Writer {
	return &writer{ctx: ctx, w: w, lim: lim}
}

func (w *writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), ioChunk)]
		if err := w.lim.WaitN(w.ctx, len(chunk)); err != nil {
			return written, err
		}
		n, err := w.w.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
