package replicate

import (
	"bytes"
	"context"
	"io"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// send writes one op and, for content ops, the file's data: every block for
// a Put, the changed blocks for a Delta. It keeps the block hashes of large
// files for the next delta.
func (sh *shipper) send(ctx context.Context, c *wire.Conn, o *out) error {
	if !o.content && o.op.Op != wire.SyncOpDelta {
		return c.WriteMsg(&o.op)
	}
	if o.op.Op == wire.SyncOpLink && o.op.Entry.Size >= DeltaMin {
		delete(sh.hashes, o.op.Path)
	}
	o.op.Content = true
	f, err := sh.root.Open(o.op.Path)
	if err != nil {
		// Gone or no longer a regular file: its next record says what it is.
		o.op.Op, o.op.Content = wire.SyncOpNone, false
		return c.WriteMsg(&o.op)
	}
	defer f.Close()
	size := o.op.Entry.Size
	large := size >= DeltaMin
	var hashes []byte
	if o.op.Op == wire.SyncOpDelta {
		if hashes, err = hashBlocks(f, size, sh.buf); err != nil {
			o.op.Op, o.op.Content = wire.SyncOpNone, false
			return c.WriteMsg(&o.op)
		}
		o.op.BlockSize, o.op.Hashes = BlockSize, hashes
	}
	var appendFrom int64 = -1
	if o.op.Op == wire.SyncOpDelta {
		if base, ok := sh.hashes[o.op.Path]; ok && isAppend(f, base, hashes, size, sh.buf) {
			// Only bytes past the old end changed: append in place.
			appendFrom = base.size
			o.op.InPlace, o.op.BaseSize = true, base.size
		}
	}
	if err := c.WriteMsg(&o.op); err != nil {
		return err
	}
	abandoned := false
	for off, b := int64(0), 0; off < size; off, b = off+BlockSize, b+1 {
		n := int(min(BlockSize, size-off))
		if appendFrom >= 0 {
			if off+int64(n) <= appendFrom {
				continue
			}
			if off < appendFrom {
				skip := int(appendFrom - off)
				if _, err := f.ReadAt(sh.buf[:n-skip], appendFrom); err != nil && err != io.EOF {
					abandoned = true
					break
				}
				if err := c.WriteMsg(&wire.SyncChunk{Off: appendFrom, Data: sh.buf[:n-skip]}); err != nil {
					return err
				}
				sh.s.contentBytes.Add(int64(n - skip))
				continue
			}
		} else if o.delta != nil {
			h := hashes[b*wire.HashSize : (b+1)*wire.HashSize]
			if (b+1)*wire.HashSize <= len(o.delta) && bytes.Equal(o.delta[b*wire.HashSize:(b+1)*wire.HashSize], h) {
				continue
			}
		}
		if _, err := f.ReadAt(sh.buf[:n], off); err != nil && !(err == io.EOF) {
			abandoned = true
			break
		}
		if large && hashes == nil {
			// Hash while streaming a full copy, for the next delta.
			h := hashOf(sh.buf[:n])
			sh.pendingHashes = append(sh.pendingHashes, h[:]...)
		}
		if sh.lim != nil {
			if err := sh.lim.WaitN(ctx, n); err != nil {
				return err
			}
		}
		if err := c.WriteMsg(&wire.SyncChunk{Off: off, Data: sh.buf[:n]}); err != nil {
			return err
		}
		sh.s.contentBytes.Add(int64(n))
	}
	if fi, err := f.Stat(); err == nil && fi.Size() < size {
		abandoned = true // shrank while read: the tail read as zeros or short
	}
	if large && !abandoned {
		if hashes == nil {
			hashes = sh.pendingHashes
		}
		sh.hashes[o.op.Path] = fileHashes{size: size, hashes: bytes.Clone(hashes)}
	} else {
		delete(sh.hashes, o.op.Path)
	}
	sh.pendingHashes = sh.pendingHashes[:0]
	return c.WriteMsg(&wire.SyncOpEnd{Abandoned: abandoned})
}
