package replicate

import (
	"bytes"
	"context"
	"fmt"
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
		sh.dropHashes(o.op.Path)
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
	rebase := false
	if delta {
		// Only to tell an append from other changes; what is verified is
		// hashed from the bytes as they are read below (a live writer may
		// change the file in between).
		outgrew := haveBase && bs > base.bs && bs%base.bs == 0
		if haveBase && (base.bs == bs || outgrew) && size >= base.size && sh.sampledAppend(f, &base, size, o.op.Entry.MtimeNs) {
			// Only bytes past the old end changed, as far as the sampled
			// check tells (sweep.go): append in place, after the path is
			// listed as unverified durably. A file that outgrew its block
			// size keeps it until the sweep has rehashed it (sweep.rebs).
			if outgrew {
				if base.sw == nil {
					base.sw = &sweep{}
				}
				if !base.sw.rehashing {
					base.sw.rebs = bs
				}
				bs = base.bs
			}
			if err := sh.s.unverified.add(o.op.Path); err != nil {
				return fmt.Errorf("list %q as unverified: %w", o.op.Path, err)
			}
			appendFrom = base.size
			o.op.InPlace, o.op.BaseSize = true, base.size
		}
		// The file outgrew its block count: blocks of the new size are
		// compared through the old-size hashes they cover.
		rebase = haveBase && bs > base.bs && bs%base.bs == 0
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
			} else if rebase {
				if sameAsBase(data, off, o.delta, base.bs, base.size) {
					continue
				}
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
		nh := fileHashes{size: size, mtime: o.op.Entry.MtimeNs, bs: bs, hashes: bytes.Clone(hashes)}
		if appendFrom >= 0 {
			nh.sw = base.sw // the old prefix is still to be proven
		}
		sh.putHashes(o.op.Path, nh)
		if nh.sw == nil {
			sh.s.unverified.done(o.op.Path)
		}
	} else {
		if !abandoned {
			sh.s.unverified.done(o.op.Path) // small now, and shipped whole
		} else if base.sw != nil {
			// Its unverified prefix is unknown now: ship it again in full.
			sh.inject(o.op.Path, size)
		}
		sh.dropHashes(o.op.Path)
	}
	if o.op.Entry.Nlink > 1 {
		sh.dropLinkHashes(o.op.Path)
	}
	sh.pendingHashes = sh.pendingHashes[:0]
	end := wire.SyncOpEnd{Abandoned: abandoned}
	if delta && appendFrom < 0 && !abandoned {
		end.Digest = digestOf(hashes)
	}
	return c.WriteMsg(&end)
}

// sameAsBase reports whether data (at off) is what the target holds by
// the old hashes (blocks of obs bytes of a file of oldSize bytes): every
// old block it covers lies within it and hashes the same.
func sameAsBase(data []byte, off int64, old []byte, obs, oldSize int64) bool {
	end := off + int64(len(data))
	if end > oldSize || off%obs != 0 {
		return false
	}
	for b := off; b < end; b += obs {
		hi := min(b+obs, oldSize)
		k := b / obs * wire.HashSize
		if hi > end || k+wire.HashSize > int64(len(old)) {
			return false
		}
		h := hashOf(data[b-off : hi-off])
		if !bytes.Equal(h[:], old[k:k+wire.HashSize]) {
			return false
		}
	}
	return true
}
