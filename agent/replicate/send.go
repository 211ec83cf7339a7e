package replicate

import (
	"bytes"
	"context"
	"io"
	"os"

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
	var appendFrom int64 = -1
	if delta {
		// Only to tell an append from other changes; what is verified is
		// hashed from the bytes as they are read below (a live writer may
		// change the file in between).
		if haveBase && base.bs == bs && size >= base.size && appended(f, base, size, sh.buf) {
			// Only bytes past the old end changed: append in place.
			appendFrom = base.size
			o.op.InPlace, o.op.BaseSize = true, base.size
		}
		o.op.BlockSize, o.op.Hashes, o.op.Digest = bs, nil, false
		hashes = make([]byte, 0, (size+bs-1)/bs*wire.HashSize)
	}
	if err := c.WriteMsg(&o.op); err != nil {
		return err
	}
	// A delta walks blocks of bs bytes, hashing each as read and sending
	// the changed ones (an append: the bytes past the old end); a full copy
	// walks chunks of BlockSize (hashing them by bs for the next delta).
	step := int64(BlockSize)
	if delta {
		step = bs
	}
	abandoned := false
	for off, b := int64(0), 0; off < size; off, b = off+step, b+1 {
		n := int(min(step, size-off))
		if appendFrom >= 0 && off+int64(n) <= appendFrom {
			hashes = append(hashes, base.hashes[b*wire.HashSize:(b+1)*wire.HashSize]...)
			continue
		}
		data := sh.buf[:n]
		if _, err := f.ReadAt(data, off); err != nil && err != io.EOF {
			abandoned = true
			break
		}
		from := off
		switch {
		case delta:
			h := hashOf(data)
			hashes = append(hashes, h[:]...)
			if appendFrom >= 0 {
				from = max(off, appendFrom)
			} else if (b+1)*wire.HashSize <= len(o.delta) && bytes.Equal(o.delta[b*wire.HashSize:(b+1)*wire.HashSize], h[:]) {
				continue
			}
		case large:
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
	end := wire.SyncOpEnd{Abandoned: abandoned}
	if delta && appendFrom < 0 && !abandoned {
		end.Digest = digestOf(hashes)
	}
	return c.WriteMsg(&end)
}

// appended reports whether f (size bytes) only grew past base.size since
// base was shipped (only the old whole blocks are hashed again).
func appended(f *os.File, base fileHashes, size int64, buf []byte) bool {
	pre, err := hashBlocks(f, base.size/base.bs*base.bs, base.bs, buf)
	return err == nil && isAppend(f, base, pre, size, buf)
}
