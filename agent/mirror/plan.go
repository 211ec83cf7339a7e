package mirror

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
	"github.com/zeebo/xxh3"
)

// planLoop decides, for every entry of the source's list, what the target
// does: directories, symlinks and special files are created at once;
// regular files get an answer (skip, full, or delta against a base whose
// block hashes are computed by a small pool); hardlinks wait for the end.
// A nil batch is the ScanEnd marker.
func (r *Receiver) planLoop(ctx context.Context, in <-chan []wire.FileEntry) error {
	hashQ := make(chan *plan, 64)
	var hashers sync.WaitGroup
	var hashErr error
	var hashMu sync.Mutex
	for range 2 {
		hashers.Go(func() {
			buf := make([]byte, BlockSize)
			var whole []byte // small files' content (strict mode), allocated on first use
			// Files of one directory come one after another: open them
			// through the directory's cached Root, not from the top.
			subs := &subRoots{root: r.root}
			defer subs.closeAll()
			for p := range hashQ {
				if p.srcHash != nil && p.base == "final" && p.e.Size <= smallFile {
					if whole == nil {
						whole = make([]byte, smallFile)
					}
					if r.sameSmall(p, whole, subs) {
						continue
					}
				}
				if err := r.hashBase(p, buf, subs); err != nil {
					hashMu.Lock()
					hashErr = errors.Join(hashErr, err)
					hashMu.Unlock()
				}
			}
		})
	}
	defer func() {
		if hashQ != nil {
			close(hashQ)
		}
		hashers.Wait()
	}()
	r.stats = &statCache{root: r.root}
	defer r.stats.close()
	for batch := range in {
		if batch == nil { // ScanEnd
			close(hashQ)
			hashers.Wait()
			hashQ = nil
			if hashErr != nil {
				return hashErr
			}
			if err := r.sendNeeds(true); err != nil {
				return err
			}
			// Drain until the reader closes in (after SendEnd).
			for range in {
			}
			return nil
		}
		pre := r.prefetch(batch)
		for i := range batch {
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
			var st *statResult
			if pre != nil && pre[i].ok && pre[i].epoch == r.epoch {
				st = &pre[i]
			}
			if err := r.planEntry(&batch[i], hashQ, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// statResult is a prefetched Lstat of a batch entry.
type statResult struct {
	cur   fsys.Entry
	err   error
	ok    bool // prefetched
	epoch int  // r.epoch when taken
}

// prefetch stats the regular files of a batch in parallel (the stat calls
// dominate a no-change run). A result is used only while r.epoch, bumped
// whenever planning removes or replaces a directory, is unchanged.
//
// Files in a directory that does not exist on the target (one the planner
// created in this run, or a directory of this batch that is absent or not
// a directory, which planning will create) are known to be absent without
// a call: on an initial mirror that saves one failing Lstat per file.
func (r *Receiver) prefetch(batch []wire.FileEntry) []statResult {
	if len(batch) < 64 {
		return nil
	}
	out := make([]statResult, len(batch))
	absent := r.absentDirs(batch)
	const workers = 3
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			sc := &statCache{root: r.root}
			defer sc.close()
			for i := w; i < len(batch); i += workers {
				fe := &batch[i]
				if fe.Type != fsys.TypeFile || fe.LinkTo != "" || fe.Path == "" {
					continue
				}
				if _, err := fsys.CleanRel(fe.Path); err != nil {
					continue
				}
				if dir, _ := splitRel(fe.Path); absent[dir] || r.created[dir] {
					out[i] = statResult{err: &os.PathError{Op: "lstat", Path: fe.Path, Err: fs.ErrNotExist},
						ok: true, epoch: r.epoch}
					continue
				}
				cur, err := sc.lstat(fe.Path)
				out[i] = statResult{cur: cur, err: err, ok: true, epoch: r.epoch}
			}
		})
	}
	wg.Wait()
	return out
}

// absentDirs returns the batch's directories under which the target holds
// nothing: those that do not exist on the target as directories, or lie
// under such a one or under one the planner created (r.created, which
// prefetch consults too).
func (r *Receiver) absentDirs(batch []wire.FileEntry) map[string]bool {
	absent := map[string]bool{}
	for i := range batch {
		fe := &batch[i]
		if fe.Type != fsys.TypeDir || fe.LinkTo != "" || fe.Path == "" || absent[fe.Path] || r.created[fe.Path] {
			continue
		}
		if _, err := fsys.CleanRel(fe.Path); err != nil {
			continue
		}
		if parent, _ := splitRel(fe.Path); parent != "" && (absent[parent] || r.created[parent]) {
			absent[fe.Path] = true
			continue
		}
		if cur, err := r.stats.lstat(fe.Path); errors.Is(err, errNotExist) || err == nil && cur.Type != fsys.TypeDir {
			absent[fe.Path] = true
		}
	}
	return absent
}

// planEntry handles one entry. Only an invalid path is fatal.
func (r *Receiver) planEntry(fe *wire.FileEntry, hashQ chan<- *plan, pre *statResult) error {
	e := &fe.Entry
	if _, err := fsys.CleanRel(e.Path); err != nil {
		return badPath(e.Path, err)
	}
	if e.Path == "" && e.Type != fsys.TypeDir {
		return badPath(e.Path, errors.New("the root must be a directory"))
	}
	if fe.LinkTo != "" {
		if _, err := fsys.CleanRel(fe.LinkTo); err != nil || fe.LinkTo == "" {
			return badPath(fe.LinkTo, fmt.Errorf("hardlink target: %v", err))
		}
	}
	r.markSeen(e.Path)
	if e.Type != fsys.TypeFile || fe.LinkTo != "" {
		r.stats.invalidate(e.Path) // it may replace a directory
	}
	var cur fsys.Entry
	var curErr error
	if pre != nil {
		cur, curErr = pre.cur, pre.err
	} else {
		cur, curErr = r.stats.lstat(e.Path)
	}
	exists := curErr == nil
	if curErr != nil && !errors.Is(curErr, errNotExist) {
		if isBadPath(curErr) {
			return badPath(e.Path, curErr)
		}
		r.objErr(e.Path, curErr)
		if e.Type == fsys.TypeFile && fe.LinkTo == "" {
			r.pushNeed(wire.Need{ID: fe.ID, Action: wire.NeedSkip})
		}
		return nil
	}
	switch {
	case fe.LinkTo != "":
		r.mu.Lock()
		r.links = append(r.links, *fe)
		r.mu.Unlock()
	case e.Type == fsys.TypeDir:
		r.planDir(e, cur, exists)
	case e.Type == fsys.TypeFile:
		r.planFile(fe, cur, exists, hashQ)
	default:
		r.planSpecial(e, cur, exists)
	}
	return nil
}

func (r *Receiver) planDir(e *fsys.Entry, cur fsys.Entry, exists bool) {
	if exists && cur.Type != fsys.TypeDir {
		r.epoch++
		if err := r.root.RemoveAll(e.Path); err != nil {
			r.objErr(e.Path, err)
			return
		}
		exists = false
	}
	if !exists {
		if err := r.root.Mkdir(e.Path, 0o700); err != nil {
			r.objErr(e.Path, err)
			return
		}
		r.created[e.Path] = true
	}
	r.mu.Lock()
	r.dirs = append(r.dirs, *e)
	r.mu.Unlock()
}

// planSpecial creates a symlink, FIFO, device or socket node under a
// temporary name, applies its metadata and renames it into place.
func (r *Receiver) planSpecial(e *fsys.Entry, cur fsys.Entry, exists bool) {
	if exists && cur.Type == e.Type && cur.Target == e.Target && cur.Rdev == e.Rdev {
		r.fixMeta(e, cur)
		return
	}
	if exists && cur.Type == fsys.TypeDir {
		r.epoch++ // install will remove the directory
	}
	tmp := tempName(e.Path)
	var err error
	if e.Type == fsys.TypeSymlink {
		err = r.root.Symlink(e.Target, tmp)
	} else {
		err = r.root.Mknod(tmp, *e)
	}
	if err != nil {
		r.objErr(e.Path, err)
		return
	}
	if err := r.root.ApplyMeta(tmp, *e); err != nil {
		r.objErr(e.Path, err)
	}
	if err := r.install(tmp, e.Path); err != nil {
		r.objErr(e.Path, err)
		r.root.Remove(tmp)
		return
	}
	r.mu.Lock()
	r.sum.FilesWritten++
	r.mu.Unlock()
}

// fixMeta applies e's metadata to the existing object when it differs.
func (r *Receiver) fixMeta(e *fsys.Entry, cur fsys.Entry) {
	if len(fsys.CompareMeta(*e, cur)) == 0 {
		return
	}
	if err := r.root.ApplyMeta(e.Path, *e); err != nil {
		r.objErr(e.Path, err)
		return
	}
	r.mu.Lock()
	r.sum.MetaUpdated++
	r.mu.Unlock()
}

// planFile answers for a regular file.
func (r *Receiver) planFile(fe *wire.FileEntry, cur fsys.Entry, exists bool, hashQ chan<- *plan) {
	e := &fe.Entry
	p := &plan{e: *e, action: wire.NeedFull, cur: cur, id: fe.ID}
	isFile := exists && cur.Type == fsys.TypeFile
	// (A hardlinked target file is never patched in place: content is
	// always written to a new inode and renamed, and finish re-links the
	// other names.)
	quickSame := isFile && cur.Size == e.Size && cur.MtimeNs == e.MtimeNs
	if ck, ok := r.ckpt.get(e.Path); ok {
		if !quickSame && ck.Size == e.Size && ck.MtimeNs == e.MtimeNs {
			p.action, p.base, p.tmpRel, p.validLen = wire.NeedDelta, "partial", ck.TmpRel, ck.Offset
		} else {
			r.root.Remove(ck.TmpRel)
			r.ckpt.remove(e.Path)
		}
	}
	if p.base == "" {
		switch {
		case quickSame && r.Job.Opts.Checksum == wire.ChecksumTime:
			r.fixMeta(e, cur)
			r.pushNeed(wire.Need{ID: fe.ID, Action: wire.NeedSkip})
			return
		case isFile && cur.Size == 0 && e.Size == 0:
			r.fixMeta(e, cur)
			r.pushNeed(wire.Need{ID: fe.ID, Action: wire.NeedSkip})
			return
		case isFile && cur.Size == e.Size && len(fe.Hash) == wire.HashSize:
			p.action, p.base, p.validLen, p.srcHash = wire.NeedDelta, "final", cur.Size, fe.Hash
		case isFile && cur.Size > 0:
			p.action, p.base, p.validLen = wire.NeedDelta, "final", cur.Size
		}
	}
	r.mu.Lock()
	r.plans[fe.ID] = p
	r.mu.Unlock()
	if p.action == wire.NeedFull {
		r.pushNeed(wire.Need{ID: fe.ID, Action: wire.NeedFull})
		return
	}
	hashQ <- p
}

// sameSmall answers NeedSkip (and fixes the metadata) when the target's
// copy of a small file has the content hash the source sent, reading it
// whole through raw fds (Root.ReadRegular: openat, fstat, pread, fstat,
// close; an *os.File costs three fcntl and a second fstat more). It
// reports false, having answered nothing, when the copy differs or cannot
// be read: hashBase then answers with block hashes or NeedFull.
func (r *Receiver) sameSmall(p *plan, buf []byte, subs *subRoots) bool {
	n, st, err := readVia(subs, p.e.Path, buf[:p.e.Size])
	if err != nil || int64(n) != p.e.Size || st.Size != p.e.Size {
		return false
	}
	h := xxh3.New128()
	h.Write(buf[:n])
	sum := h.Sum128().Bytes()
	if !bytes.Equal(sum[:], p.srcHash) {
		return false
	}
	r.mu.Lock()
	delete(r.plans, p.id)
	r.mu.Unlock()
	r.fixMeta(&p.e, p.cur)
	r.pushNeed(wire.Need{ID: p.id, Action: wire.NeedSkip})
	return true
}

// hashBase computes the block hashes of a plan's base and answers NeedDelta
// (or NeedFull when the base cannot be read).
func (r *Receiver) hashBase(p *plan, buf []byte, subs *subRoots) error {
	rel := p.e.Path
	if p.base == "partial" {
		rel = p.tmpRel
	}
	f, err := openVia(subs, rel)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && p.srcHash != nil {
			// Strict mode, small file: compare whole-content hashes here.
			var h [wire.HashSize]byte
			if h, err = contentHash(f, fi.Size(), buf); err == nil {
				if bytes.Equal(h[:], p.srcHash) && fi.Size() == p.e.Size {
					f.Close()
					r.mu.Lock()
					delete(r.plans, p.id)
					r.mu.Unlock()
					r.fixMeta(&p.e, p.cur)
					r.pushNeed(wire.Need{ID: p.id, Action: wire.NeedSkip})
					return nil
				}
				// Different: fall through to a block delta.
			}
		}
		if err == nil {
			p.validLen = min(p.validLen, fi.Size())
			var hashes []byte
			hashes, err = blockHashes(f, p.validLen, buf)
			if err == nil {
				f.Close()
				r.pushNeed(wire.Need{ID: p.id, Action: wire.NeedDelta, BlockSize: BlockSize,
					ValidLen: p.validLen, Hashes: hashes, Resumed: p.base == "partial"})
				return nil
			}
		}
		f.Close()
	}
	r.Log.Debug("target: base unusable, asking for the whole file", "path", p.e.Path, "err", err)
	if p.base == "partial" {
		r.root.Remove(p.tmpRel)
		r.ckpt.remove(p.e.Path)
	}
	r.mu.Lock()
	p.action, p.base, p.tmpRel, p.validLen = wire.NeedFull, "", "", 0
	r.mu.Unlock()
	r.pushNeed(wire.Need{ID: p.id, Action: wire.NeedFull})
	return nil
}

// install renames tmp over final, replacing whatever is there (a directory
// in the way is removed first).
func (r *Receiver) install(tmp, final string) error {
	err := r.root.Rename(tmp, final)
	if err == nil {
		return nil
	}
	cur, lerr := r.root.Lstat(final)
	if lerr != nil || cur.Type != fsys.TypeDir {
		return err
	}
	if err := r.root.RemoveAll(final); err != nil {
		return err
	}
	return r.root.Rename(tmp, final)
}

// tempPrefix starts the names of the receiver's temporary objects (the same
// prefix fsys.Root.CreateTemp uses, so one cleanup rule covers both).
const tempPrefix = ".ferry."

// tempName returns a fresh temporary name beside rel.
func tempName(rel string) string {
	var rnd [8]byte
	rand.Read(rnd[:])
	dir, base := path.Split(rel)
	if len(base) > 200 {
		base = base[:200]
	}
	return dir + tempPrefix + base + "." + hex.EncodeToString(rnd[:])
}
