package replicate

import (
	"bytes"
	"io"
	"os"
	"time"

	"github.com/ferry-migrate/ferry/agent/journal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// An append to a large file ships only the bytes past the old end. Proving
// the old bytes unchanged would mean reading the whole file again before
// each ship: a second for a few GB of database or log, with every other
// change waiting behind it. Instead the shipper checks the old partial last
// block, the first and the last whole block and a window of the old
// prefix (sampled append), and sweeps that window over the rest of the file at each later
// ship and whenever it has nothing else to do. A sweep cycle that begins
// after the last sampled append and completes without a mismatch proves
// the target's copy; a mismatch ships the file as a block delta (every
// block hashed, the differing ones sent).
//
// While a path is unverified it is listed durably (unverified.go), so that
// after a crash of the source agent, or a resync, it is compared strictly
// rather than trusted on its size and mtime.

// SweepWindow is how many bytes of an unverified file's old prefix one
// sweep step hashes (at each ship of the file, and repeatedly while the
// shipper is idle): about half a millisecond of reading and hashing, which
// is what a change arriving meanwhile waits at most. (At 16 MiB a step
// held every change behind it for 5 ms.)
const SweepWindow = 2 << 20

// sweepEvery is how often, under a steady load, the shipper advances the
// sweep of a quiet unverified file by one window, and how often an idle
// shipper advances the sweep of a file still being appended to.
const sweepEvery = 100 * time.Millisecond

// SweepQuiet is how long a file must go without a write before an idle
// shipper sweeps it at full speed. A cycle proves the target's copy only
// if no append ships during it, so sweeping a file still being written as
// fast as possible would read it over and over (a busy log of a few GB:
// the whole file every few seconds) and prove nothing; it is swept at one
// window per sweepEvery instead, which still finds a change to its old
// bytes, and at full speed from a fresh cycle once it is quiet.
const SweepQuiet = time.Second

// sweep is the rolling verification state of a file shipped by sampled
// appends.
type sweep struct {
	next     int64  // next block the sweep checks
	appends  uint64 // sampled appends shipped
	cycleAt  uint64 // appends when the current cycle began
	mismatch bool   // a block differs: the next ship is a full delta
	// rebs is the block size an appended file outgrew its own for (see
	// deltaBlockSize): the sweep cycle that starts next also hashes what
	// it verifies in rebs blocks (rehashed, from the file's start), and
	// at its end the file's hashes switch to rebs. Appends meanwhile keep
	// the old block size and ship in place: re-blocking at once would
	// read the whole file on the source and copy it on the target, a
	// stall of a second per few GB on every change behind it.
	rebs      int64
	rehashing bool
	rehashed  []byte
	paced     time.Time // last idle step while the file was being written
}

// sampledAppend reports whether f (size bytes) only grew past base.size as
// far as the sampled check can tell: the old partial last block, the first
// and the last whole block hash as shipped, and so does the next sweep
// window. A file that did not grow is taken for an append (of nothing)
// only when its mtime is the one shipped.
func (sh *shipper) sampledAppend(f *os.File, base *fileHashes, size, mtime int64) bool {
	if base.sw != nil && base.sw.mismatch {
		return false
	}
	if size < base.size || size == base.size && mtime != base.mtime && base.sw == nil || len(base.hashes) == 0 {
		// Not grown but written: a change in place ships as a delta at
		// once. The same size and mtime is a record of a write the last
		// ship already read, or one within the same clock tick; the same
		// size with a new mtime in a file being appended to is an append
		// caught between its mtime and its size update (write(2) sets the
		// mtime first). The sweep covers both.
		return false
	}
	bs := base.bs
	whole := base.size / bs
	check := func(blk int64, n int64) bool {
		if int64(len(base.hashes)) < (blk+1)*wire.HashSize {
			return false
		}
		if _, err := f.ReadAt(sh.buf[:n], blk*bs); err != nil && err != io.EOF {
			return false
		}
		h := hashOf(sh.buf[:n])
		return bytes.Equal(h[:], base.hashes[blk*wire.HashSize:(blk+1)*wire.HashSize])
	}
	if tail := base.size - whole*bs; tail > 0 && !check(whole, tail) {
		return false
	}
	if whole > 0 && (!check(whole-1, bs) || !check(0, bs)) {
		return false // the first block: headers (a WAL's, a database's)
	}
	if base.sw == nil {
		if whole <= SweepWindow/bs {
			// The window covers the whole old prefix: check it all now
			// (nothing left to prove later).
			return sh.sweepStep(f, &fileHashes{size: base.size, bs: bs, hashes: base.hashes, sw: &sweep{}})
		}
		base.sw = &sweep{}
	}
	if !sh.sweepStep(f, base) {
		return false
	}
	if base.sw == nil {
		base.sw = &sweep{} // proven up to now; this append starts over
	}
	base.sw.appends++
	return true
}

// sweepStep checks the next SweepWindow bytes of h's whole blocks against
// the hashes shipped. It returns false on a mismatch or a read error (and
// marks h for a full delta). When a cycle completes it ends the sweep if
// the cycle began after the last sampled append (h is verified) and
// starts a new cycle otherwise.
func (sh *shipper) sweepStep(f *os.File, h *fileHashes) bool {
	sw := h.sw
	whole := min(h.size/h.bs, int64(len(h.hashes)/wire.HashSize))
	if sw.next == 0 {
		sw.rehashing, sw.rehashed = sw.rebs > h.bs, sw.rehashed[:0]
	}
	end := min(sw.next+max(SweepWindow/h.bs, 1), whole)
	for blk := sw.next; blk < end; {
		n := min(int64(BlockSize)/h.bs, end-blk)
		data := sh.buf[:n*h.bs]
		if _, err := f.ReadAt(data, blk*h.bs); err != nil {
			sw.mismatch = true
			return false
		}
		sh.s.sweptBytes.Add(int64(len(data)))
		for i := range n {
			got := hashOf(data[i*h.bs : (i+1)*h.bs])
			k := (blk + i) * wire.HashSize
			if !bytes.Equal(got[:], h.hashes[k:k+wire.HashSize]) {
				sw.mismatch = true
				return false
			}
		}
		if sw.rehashing {
			// Chunks start at multiples of BlockSize, so of rebs; only the
			// cycle's last one may end inside a rebs block (rehash below).
			sw.rehashed = appendBlockHashes(sw.rehashed, data, sw.rebs)
		}
		blk += n
	}
	sw.next = end
	if sw.next >= whole && sw.rehashing {
		if !sh.switchBlockSize(f, h, whole) {
			sw.mismatch = true
			return false
		}
		return true
	}
	if sw.next >= whole {
		if sw.appends == sw.cycleAt {
			h.sw = nil // a whole cycle after the last sampled append: verified
			return true
		}
		sw.next, sw.cycleAt = 0, sw.appends
	}
	return true
}

// switchBlockSize ends a rehashing sweep cycle: its rehashed blocks cover
// the first whole blocks of h; the rest of the file (the last rebs block,
// which the cycle's last chunk may have cut, and the partial last block)
// is read again, verified against h's hashes and hashed in rebs blocks.
// Then h's hashes are those, and a new sweep cycle begins at rebs. False
// on a mismatch or a read error.
func (sh *shipper) switchBlockSize(f *os.File, h *fileHashes, whole int64) bool {
	sw, obs, nbs := h.sw, h.bs, h.sw.rebs
	from := whole * obs / nbs * nbs // the first rebs block not complete
	hs := sw.rehashed[:from/nbs*wire.HashSize]
	for off := from; off < h.size; off += nbs {
		n := min(nbs, h.size-off)
		data := sh.buf[:n]
		if _, err := f.ReadAt(data, off); err != nil {
			return false
		}
		for b := off / obs; b*obs < off+n; b++ {
			k := b * wire.HashSize
			if k+wire.HashSize > int64(len(h.hashes)) {
				return false
			}
			got := hashOf(data[b*obs-off : min((b+1)*obs, h.size)-off])
			if !bytes.Equal(got[:], h.hashes[k:k+wire.HashSize]) {
				return false
			}
		}
		hs = appendBlockHashes(hs, data, nbs)
	}
	h.bs, h.hashes = nbs, bytes.Clone(hs)
	sw.rebs, sw.rehashing, sw.rehashed = 0, false, nil
	sw.next, sw.cycleAt = 0, sw.appends
	return true
}

// sweepIdle advances the sweeps of unverified files: while no record
// waits (next is the first record not read yet), or by one window of one
// file when steps is 1 (so sweeps go on under a steady load). A mismatch
// journals a modify record for the file, which then ships as a full delta.
func (sh *shipper) sweepIdle(next uint64, steps int) {
	s := sh.s
	for p := range sh.unproven {
		h := sh.hashes[p]
		if h.sw == nil || h.sw.mismatch {
			continue
		}
		budget := -1 // steps for this file; -1: while idle
		switch {
		case steps > 0:
			// The steady-load step: one window, written to or not.
		case sh.writtenWithin(p, SweepQuiet):
			// Still being written: the cycle will not get to prove it.
			if time.Since(h.sw.paced) < sweepEvery {
				continue
			}
			h.sw.paced, budget = time.Now(), 1
		case h.sw.appends != h.sw.cycleAt:
			// Quiet now, but appends shipped during this cycle: a fresh
			// cycle can prove the copy.
			h.sw.next, h.sw.cycleAt = 0, h.sw.appends
		}
		f, err := sh.root.Open(p)
		if err != nil {
			// Gone or replaced: a record of that change follows.
			continue
		}
		for h.sw != nil && budget != 0 && (steps > 0 || s.j.Last() < next) {
			steps--
			budget--
			if !sh.sweepStep(f, &h) {
				s.log.Debug("sync sweep found a change", "path", p)
				sh.inject(p, h.size)
				break
			}
		}
		f.Close()
		sh.putHashes(p, h)
		if h.sw == nil {
			s.log.Debug("sync sweep proved the target's copy", "path", p)
			sh.s.unverified.done(p)
		}
		if steps == 0 || s.j.Last() >= next {
			return
		}
	}
}

// writtenWithin reports whether the shipper saw a write to p in the last d.
func (sh *shipper) writtenWithin(p string, d time.Duration) bool {
	t, ok := sh.hot[p]
	return ok && time.Now().UnixNano()-t < int64(d)
}

// inject journals a modify record for p so that it ships again (as a full
// delta when its hashes are known and marked, else in full). A full journal
// forces a resync, which covers it.
func (sh *shipper) inject(p string, size int64) {
	seq, err := sh.s.j.Append(journal.Record{Op: journal.OpModify, Path: p, Size: size})
	if err == nil {
		sh.s.injected.Store(seq)
		return
	}
	sh.s.log.Warn("sync: cannot journal a re-check: remirror required", "path", p, "err", err)
	sh.s.setState(StateRemirrorRequired)
	select {
	case sh.s.remirror <- struct{}{}:
	default:
	}
}

// dropUnverified is called before the hashes are forgotten (a new
// session, a rescan): files still unverified ship again in full.
func (sh *shipper) dropUnverified() {
	for p, h := range sh.hashes {
		if h.sw != nil {
			sh.inject(p, h.size)
		}
	}
}

// putHashes records what the target holds of p, keeping the count of
// unproven files (which WaitDrained waits for) in step.
func (sh *shipper) putHashes(p string, h fileHashes) {
	sh.hashes[p] = h
	if h.sw != nil {
		sh.unproven[p] = true
	} else {
		delete(sh.unproven, p)
	}
	sh.s.unproven.Store(int64(len(sh.unproven)))
}

// dropHashes forgets what the target holds of p.
func (sh *shipper) dropHashes(p string) {
	delete(sh.hashes, p)
	delete(sh.unproven, p)
	sh.s.unproven.Store(int64(len(sh.unproven)))
}

// clearHashes forgets every file's hashes.
func (sh *shipper) clearHashes() {
	clear(sh.hashes)
	clear(sh.unproven)
	sh.s.unproven.Store(0)
}
