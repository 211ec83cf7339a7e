package replicate

import (
	"bytes"
	"context"
	"io"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// send writes one op and, for content ops, the file's data: every block for
// a Put, the changed blocks for a Delta, the bytes past the old end for an
// append. It keeps the block hashes of large files for the next delta.
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
	base, haveBase := sh.hashes[o.op.Path]
	bs := blockSizeFor(size)
	if haveBase {
		bs = deltaBlockSize(size, base)
	}
	var hashes []byte
	delta := o.op.Op == wire.SyncOpDelta
	if delta {
		if hashes, err = hashBlocks(f, size, bs, sh.buf); err != nil {
			o.op.Op, o.op.Content = wire.SyncOpNone, false
			return c.WriteMsg(&o.op)
		}
		o.op.BlockSize, o.op.Hashes, o.op.Digest = bs, digestOf(hashes), true
	}
	var appendFrom int64 = -1
	if delta && haveBase && base.bs == bs && isAppend(f, base, hashes, size, sh.buf) {
		// Only bytes past the old end changed: append in place.
		appendFrom = base.size
		o.op.InPlace, o.op.BaseSize = true, base.size
	}
	if err := c.WriteMsg(&o.op); err != nil {
		return err
	}
	// A delta walks blocks of bs bytes (sending the changed ones), a full
	// copy chunks of BlockSize (hashing them by bs for the next delta).
	step := int64(BlockSize)
	if delta {
		step = bs
	}
	abandoned := false
	for off, b := int64(0), 0; off < size; off, b = off+step, b+1 {
		n := int(min(step, size-off))
		from := off
		switch {
		case appendFrom >= 0:
			if off+int64(n) <= appendFrom {
				continue
			}
			from = max(off, appendFrom)
		case delta && o.delta != nil:
			h := hashes[b*wire.HashSize : (b+1)*wire.HashSize]
			if (b+1)*wire.HashSize <= len(o.delta) && bytes.Equal(o.delta[b*wire.HashSize:(b+1)*wire.HashSize], h) {
				continue
			}
		}
		data := sh.buf[:n]
		if _, err := f.ReadAt(data, off); err != nil && err != io.EOF {
			abandoned = true
			break
		}
		if large && !delta {
			// Hash while streaming a full copy, for the next delta.
			sh.pendingHashes = appendBlockHashes(sh.pendingHashes, data, bs)
		}
		data = data[from-off:]
		if sh.lim != nil {
			if err := sh.lim.WaitN(ctx, len(data)); err != nil {
				return err
			}
		}
		if err := c.WriteMsg(&wire.SyncChunk{Off: from, Data: data}); err != nil {
			return err
		}
		sh.s.contentBytes.Add(int64(len(data)))
	}
	if fi, err := f.Stat(); err == nil && fi.Size() < size {
		abandoned = true // shrank while read: the tail read as zeros or short
	}
	if large && !abandoned {
		if hashes == nil {
			hashes = sh.pendingHashes
		}
		sh.hashes[o.op.Path] = fileHashes{size: size, bs: bs, hashes: bytes.Clone(hashes)}
	} else {
		delete(sh.hashes, o.op.Path)
	}
	sh.pendingHashes = sh.pendingHashes[:0]
	return c.WriteMsg(&wire.SyncOpEnd{Abandoned: abandoned})
}
