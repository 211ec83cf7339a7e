package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
	"golang.org/x/sys/unix"
)

// applier writes file content on the target: frames of one file always go
// to the same worker (by id), so each file is written in order while
// several files are written in parallel.
type applier struct {
	r       *Receiver
	workers []chan applyItem
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error // first fatal error, guarded by errMu
	// abort stops the whole job on a fatal error (the reader may be
	// blocked reading the connection).
	abort func(error)
}

// applyItem is a Data frame (data != nil or zero-length) or a FileEnd.
type applyItem struct {
	id    uint64
	off   int64
	data  []byte
	end   *wire.FileEnd
	frame []byte // detached frame buffer to recycle, if any
	// The payload codec's view of a Data frame: data is still encoded
	// when the connection defers decoding (see applier.decode).
	seq    uint64
	flags  uint8
	rawLen int
}

// openFile is a file being written.
type openFile struct {
	p        *plan
	f        *os.File
	tmpRel   string
	hi       int64 // end of the highest frame written
	lastCkpt int64
	wrote    bool
	syncer   *syncer
	opened   time.Time
	// sub is the Root of the file's directory (dir) when the temporary
	// was created through it; name and tmpName are relative to it.
	sub          *fsys.Root
	dir, tmpName string
	// unnamed: a new small file written as an unnamed inode
	// (fsys.CreateUnnamed, no tmpRel) and linked in when complete.
	unnamed bool
}

// unnamedMax is the largest new file written unnamed: a cut transfer of a
// larger one is kept under a temporary name to resume from (abandon).
const unnamedMax = 1 << 20

// syncer flushes a file to disk in the background (one fdatasync in
// flight at most), so that the writer never waits for the disk.
type syncer struct {
	mu       sync.Mutex
	inflight bool // guarded by mu
	wg       sync.WaitGroup
	// last is when the last fdatasync started (the file's open time at
	// first); used only by the file's writer.
	last time.Time
}

// syncInterval is the least time between two background fdatasyncs of one
// file. Forcing the data of a fast local transfer to disk while it runs
// costs ~20% of its wall time on ext4 (writeback and journal commits the
// kernel would otherwise do after the job) and buys nothing a kill or a
// cut connection needs: the page cache survives those, and a prefix lost
// to a power failure is found by the resume's block-hash check. On a
// long transfer a sync every 30 s bounds what a power failure re-sends.
const syncInterval = 30 * time.Second

// wait waits for a sync in flight (and its checkpoint record).
func (s *syncer) wait() {
	if s != nil {
		s.wg.Wait()
	}
}

func newApplier(r *Receiver, n int, abort func(error)) *applier {
	a := &applier{r: r, abort: abort}
	for range n {
		ch := make(chan applyItem, 2) // small: frames queued here are lost when the agent dies
		a.workers = append(a.workers, ch)
		a.wg.Go(func() { a.work(ch) })
	}
	return a
}

func (a *applier) fatal(err error) {
	a.errMu.Lock()
	first := a.err == nil
	if first {
		a.err = err
	}
	a.errMu.Unlock()
	if first {
		a.abort(err)
	}
}

func (a *applier) failed() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

// data queues a Data frame. Large payloads are detached from the
// connection's read buffer (no copy); small ones are copied.
func (a *applier) data(ctx context.Context, m *wire.Data) error {
	it := applyItem{id: m.ID, off: m.Offset, seq: m.Seq, flags: m.Flags, rawLen: int(m.RawLen)}
	if len(m.Payload) > frameSize/4 {
		if buf, ok := a.r.Conn.DetachPayload(m); ok {
			it.data, it.frame = m.Payload, buf
			return a.queue(ctx, it)
		}
		// A codec's output: copy it into a pooled buffer, not a fresh one.
		it.data = a.r.Conn.CopyPayload(m)
		it.frame = it.data
		return a.queue(ctx, it)
	}
	it.data = append([]byte(nil), m.Payload...)
	return a.queue(ctx, it)
}

// end queues a FileEnd.
func (a *applier) end(ctx context.Context, m *wire.FileEnd) error {
	return a.queue(ctx, applyItem{id: m.ID, end: m})
}

func (a *applier) queue(ctx context.Context, it applyItem) error {
	if err := a.failed(); err != nil {
		return err
	}
	select {
	case a.workers[it.id%uint64(len(a.workers))] <- it:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// close waits for the workers to drain and reports the first fatal error.
func (a *applier) close() error {
	for _, ch := range a.workers {
		close(ch)
	}
	a.wg.Wait()
	return a.failed()
}

func (a *applier) work(ch <-chan applyItem) {
	dec, err := a.r.Conn.NewPayloadDecoder()
	if err != nil {
		a.fatal(err)
	} else {
		defer dec.Close()
	}
	open := map[uint64]*openFile{}
	subs := &subRoots{root: a.r.root}
	defer subs.closeAll()
	defer func() {
		// Files still open: the transfer was cut. Partial files keep their
		// checkpointed temp; others are removed.
		for _, of := range open {
			a.abandon(of)
		}
	}()
	for it := range ch {
		if a.failed() != nil {
			a.release(it)
			continue
		}
		if err := a.decode(dec, &it); err != nil {
			a.fatal(err)
		} else if err := a.apply(open, subs, it); err != nil {
			a.fatal(err)
		}
		a.release(it)
	}
}

// decode undoes the payload codec of a Data item (the connection checked
// its sequence number in order; dec checks it was sealed under it). The
// result lives in dec's buffers until its next Decode.
func (a *applier) decode(dec wire.PayloadDecoder, it *applyItem) error {
	if it.end != nil {
		return nil
	}
	out, err := dec.Decode(nil, it.data, it.flags, it.seq, it.rawLen)
	if err != nil {
		return fmt.Errorf("decode data frame %d from source: %w", it.seq, err)
	}
	it.data = out
	return nil
}

func (a *applier) release(it applyItem) {
	if it.frame != nil {
		a.r.Conn.Recycle(it.frame)
	}
}

// apply handles one item. Only protocol violations are fatal; file system
// failures are recorded per file.
func (a *applier) apply(open map[uint64]*openFile, subs *subRoots, it applyItem) error {
	r := a.r
	of := open[it.id]
	if of == nil {
		r.mu.Lock()
		p := r.plans[it.id]
		r.mu.Unlock()
		if p == nil {
			return fmt.Errorf("%w: content for file id %d that was not asked for", wire.ErrProtocol, it.id)
		}
		if it.end != nil && it.end.Status != wire.FileOK {
			a.forget(it.id, p)
			return nil
		}
		if it.end != nil && p.base == "final" && it.end.Size == p.validLen {
			// Delta found nothing to send: the content is identical.
			a.forget(it.id, p)
			r.fixMeta(&p.e, p.cur)
			return nil
		}
		var err error
		of, err = a.open(p, subs)
		if err != nil {
			r.objErr(p.e.Path, err)
			of = &openFile{p: p} // swallow its frames
		}
		open[it.id] = of
	}
	if it.end == nil {
		if of.f == nil {
			return nil
		}
		if it.off < 0 || it.off+int64(len(it.data)) > of.p.e.Size {
			return fmt.Errorf("%w: frame [%d,+%d) outside file %q of %d bytes", wire.ErrProtocol, it.off, len(it.data), of.p.e.Path, of.p.e.Size)
		}
		if _, err := of.f.WriteAt(it.data, it.off); err != nil {
			r.objErr(of.p.e.Path, err)
			a.discard(of)
			of.f = nil
			if of.sub != nil {
				subs.put(of.dir)
				of.sub = nil
			}
			return nil
		}
		of.wrote = true
		of.hi = max(of.hi, it.off+int64(len(it.data)))
		return a.maybeCheckpoint(of)
	}
	delete(open, it.id)
	a.forgetPlan(it.id)
	if of.f == nil {
		return nil
	}
	if it.end.Status != wire.FileOK {
		a.discard(of)
		if of.sub != nil {
			subs.put(of.dir)
		}
		return nil
	}
	if it.end.Size != of.p.e.Size {
		return fmt.Errorf("%w: file %q ended at %d bytes, announced %d", wire.ErrProtocol, of.p.e.Path, it.end.Size, of.p.e.Size)
	}
	a.finishFile(of)
	if of.sub != nil {
		subs.put(of.dir)
	}
	return nil
}

// open prepares the temporary file a plan writes into.
func (a *applier) open(p *plan, subs *subRoots) (*openFile, error) {
	r := a.r
	if p.base == "partial" {
		f, err := r.root.OpenFile(p.tmpRel, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		return &openFile{p: p, f: f, tmpRel: p.tmpRel, hi: p.validLen, lastCkpt: p.validLen, opened: time.Now()}, nil
	}
	dir, base := splitRel(p.e.Path)
	sub, err := subs.get(dir)
	if err != nil {
		return nil, err
	}
	// The temporary gets the file's permission bits (finishFile then
	// rarely needs a chmod), but its group's bits only when the agent's
	// group is the file's: until the chown, the group is the agent's.
	perm := p.e.Mode
	if p.e.Gid != r.egid {
		perm &^= 0o070
	}
	if p.base == "" && p.cur.Type == 0 && p.e.Size <= unnamedMax && !r.noUnnamed.Load() {
		// A new small file: one directory update (the link) instead of
		// two (create, rename), and nothing left behind by a crash.
		f, err := sub.CreateUnnamed("", perm)
		if err == nil {
			return &openFile{p: p, f: f, sub: sub, dir: dir, unnamed: true, opened: time.Now()}, nil
		}
		if !errors.Is(err, fsys.ErrUnnamedUnsupported) {
			subs.put(dir)
			return nil, err
		}
		r.noUnnamed.Store(true)
	}
	f, tmpName, err := sub.CreateTempPerm("", base, perm)
	if err != nil {
		subs.put(dir)
		return nil, err
	}
	tmpRel := joinRel(dir, tmpName)
	of := &openFile{p: p, f: f, tmpRel: tmpRel, sub: sub, dir: dir, tmpName: tmpName, opened: time.Now()}
	if p.base == "final" {
		// Start from the current content; the delta overwrites what
		// differs.
		src, err := r.root.Open(p.e.Path)
		if err == nil {
			err = copyExtents(f, src, min(p.validLen, p.e.Size))
			src.Close()
		}
		if err != nil {
			f.Close()
			r.root.Remove(tmpRel)
			subs.put(dir)
			return nil, fmt.Errorf("copy base: %w", err)
		}
	}
	return of, nil
}

// copyExtents copies the data extents of the first n bytes of src into dst
// at the same offsets (holes stay holes), in the kernel.
func copyExtents(dst, src *os.File, n int64) error {
	ext, err := fsys.DataExtents(src, n)
	if err != nil {
		return err
	}
	for _, x := range ext {
		roff, woff := x.Off, x.Off
		for left := x.Len; left > 0; {
			c, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(left, 1<<30)), 0)
			if err != nil {
				return err
			}
			if c == 0 {
				return errors.New("base shrank while copied")
			}
			left -= int64(c)
		}
	}
	return nil
}

// maybeCheckpoint records, every CheckpointBytes, how far a large file has
// been written (full sends and resumed partials only: a delta against the
// final file is cheap to redo), and starts a background fdatasync when the
// last one is syncInterval old.
//
// The record is written after the data's write() returned, so it is exact
// for a killed agent (the page cache survives the process). It is not gated
// on the fdatasync: after a power loss a record may claim data the disk
// lost, which the next run's prefix check (block hashes compared with the
// source) finds and re-sends. The fdatasync bounds how much that can be.
func (a *applier) maybeCheckpoint(of *openFile) error {
	r := a.r
	if of.p.base == "final" || r.ckpt.dir == "" || of.hi-of.lastCkpt < r.Job.Opts.CheckpointBytes {
		return nil
	}
	of.lastCkpt = of.hi
	ck := partial{Path: of.p.e.Path, TmpRel: of.tmpRel, Offset: of.hi, Size: of.p.e.Size, MtimeNs: of.p.e.MtimeNs}
	if err := r.ckpt.save(ck); err != nil {
		r.Log.Warn("target: checkpoint failed", "path", ck.Path, "err", err)
	}
	if of.syncer == nil {
		of.syncer = &syncer{last: of.opened}
	}
	sy := of.syncer
	if time.Since(sy.last) < syncInterval {
		return nil
	}
	sy.mu.Lock()
	defer sy.mu.Unlock()
	if sy.inflight {
		return nil
	}
	sy.last = time.Now()
	fd, err := unix.Dup(int(of.f.Fd()))
	if err != nil {
		return nil
	}
	sy.inflight = true
	sy.wg.Go(func() {
		unix.Fdatasync(fd)
		unix.Close(fd)
		sy.mu.Lock()
		sy.inflight = false
		sy.mu.Unlock()
	})
	return nil
}

// finishFile sets the size and metadata of a complete temporary file and
// renames it into place.
func (a *applier) finishFile(of *openFile) {
	r := a.r
	e := &of.p.e
	var err error
	if of.p.base != "" || of.hi != e.Size {
		err = of.f.Truncate(e.Size) // trailing hole, or a longer base
	}
	if err == nil {
		if merr := fsys.ApplyMetaFD(of.f, *e); merr != nil {
			r.objErr(e.Path, merr) // content is right; metadata partly
		}
	}
	if err == nil && of.unnamed {
		err = a.linkUnnamed(of)
	}
	if cerr := of.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !of.unnamed {
		if of.sub != nil {
			_, name := splitRel(e.Path)
			if err = of.sub.Rename(of.tmpName, name); err != nil {
				err = r.install(of.tmpRel, e.Path) // e.g. a directory in the way
			}
		} else {
			err = r.install(of.tmpRel, e.Path)
		}
	}
	if err != nil {
		r.objErr(e.Path, err)
		if of.tmpRel != "" {
			r.root.Remove(of.tmpRel)
		}
	}
	r.ckpt.remove(e.Path)
	if err == nil {
		r.mu.Lock()
		r.sum.FilesWritten++
		r.mu.Unlock()
	}
}

// linkUnnamed names a complete unnamed file: linked at its path when
// nothing is there (the plan saw nothing), else linked under a temporary
// name and installed over what appeared.
func (a *applier) linkUnnamed(of *openFile) error {
	_, name := splitRel(of.p.e.Path)
	err := of.sub.LinkUnnamed(of.f, name)
	if err == nil || !errors.Is(err, unix.EEXIST) {
		return err
	}
	tmp, err := of.sub.LinkUnnamedTemp(of.f, "", name)
	if err != nil {
		return err
	}
	of.tmpRel = joinRel(of.dir, tmp)
	return a.r.install(of.tmpRel, of.p.e.Path)
}

// discard closes and removes a temporary file that will not be installed.
func (a *applier) discard(of *openFile) {
	if of.f != nil {
		of.f.Close()
	}
	if of.unnamed {
		return // closing frees it
	}
	a.r.root.Remove(of.tmpRel)
	if of.p.base == "partial" {
		a.r.ckpt.remove(of.p.e.Path)
	}
}

// abandon handles a file left open by a cut transfer: everything received
// is made durable and checkpointed (full sends and resumed partials), so
// the next run continues from there; other temporaries are removed.
func (a *applier) abandon(of *openFile) {
	if of.f == nil {
		return
	}
	r := a.r
	if of.unnamed {
		of.f.Close() // small: sent again in full
		return
	}
	of.syncer.wait()
	if of.p.base != "final" && r.ckpt.dir != "" && of.hi > of.lastCkpt {
		ck := partial{Path: of.p.e.Path, TmpRel: of.tmpRel, Offset: of.hi, Size: of.p.e.Size, MtimeNs: of.p.e.MtimeNs}
		if err := r.ckpt.save(ck); err != nil {
			r.Log.Warn("target: checkpoint failed", "path", ck.Path, "err", err)
		}
	}
	of.f.Close()
	if ck, ok := r.ckpt.get(of.p.e.Path); ok && ck.TmpRel == of.tmpRel {
		return
	}
	r.root.Remove(of.tmpRel)
}

// forget drops a plan that needs no writing (and its partial, for a file
// the source could not read).
func (a *applier) forget(id uint64, p *plan) {
	a.forgetPlan(id)
	if p.base == "partial" {
		a.r.root.Remove(p.tmpRel)
		a.r.ckpt.remove(p.e.Path)
	}
}

func (a *applier) forgetPlan(id uint64) {
	a.r.mu.Lock()
	delete(a.r.plans, id)
	a.r.mu.Unlock()
}
