package replicate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/journal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// out is one op to send, with its content read at send time.
type out struct {
	op      wire.SyncOp
	content bool   // stream the file at op.Path (Put, Rename)
	delta   []byte // Delta: the target's current block hashes
}

// ship turns record i of recs into ops built from the source's current
// state and sends them (the last one marked Last). full disables the
// shortcuts that rely on the target's state (delta, hardlink to an earlier
// name, rename without content). skipped collects paths whose records
// were dropped because a later record of the batch renames them away.
func (sh *shipper) ship(ctx context.Context, c *wire.Conn, recs []journal.Record, i int, full bool, skipped map[string]uint64) error {
	r := recs[i]
	var ops []out
	var err error
	switch r.Op {
	case journal.OpRescan:
		e, lerr := sh.root.Lstat(r.Path)
		if lerr == nil && e.Type == fsys.TypeDir {
			// Compare the subtree with the mirror engine once the target
			// has applied everything before this record.
			if err := sh.waitAcked(ctx, c); err != nil {
				return err
			}
			if err := sh.s.cfg.Mirror(ctx, r.Path); err != nil {
				return err
			}
			clear(sh.hashes)
			break
		}
		ops, err = sh.stateOps(r, recs, i, full, skipped)
	case journal.OpRename:
		ops, err = sh.renameOps(r, recs, i, full, skipped)
	default:
		ops, err = sh.stateOps(r, recs, i, full, skipped)
	}
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		ops = []out{{op: wire.SyncOp{Op: wire.SyncOpNone}}}
	}
	for k := range ops {
		o := &ops[k]
		o.op.Seq = r.Seq
		o.op.Last = k == len(ops)-1
		sh.s.log.Debug("sync op", "seq", r.Seq, "rec", r.Op, "op", o.op.Op, "path", o.op.Path, "from", o.op.From,
			"link", o.op.LinkTo, "content", o.content, "nlink", o.op.Entry.Nlink, "ino", o.op.Entry.Ino)
		if err := sh.send(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
}

// ExplainWait bounds how long the shipper waits for the record that
// explains a vanished path (capture may lag the shipper's stat).
const ExplainWait = 25 * time.Millisecond

// renamedLater reports whether a vanished p was renamed away (p or an
// ancestor is the From of a later record): then that rename ships the
// content under the new name and p's record is skipped. It looks for the
// record explaining the disappearance (a rename or delete of p or of an
// ancestor) in the rest of the batch and in the journal's next records,
// waiting up to ExplainWait for capture to journal it.
func (sh *shipper) renamedLater(recs []journal.Record, i int, p string) bool {
	under := func(x string) bool { return x == p || x == "" || strings.HasPrefix(p, x+"/") }
	explain := func(rs []journal.Record) (renamed, found bool) {
		for _, r := range rs {
			switch {
			case r.Op == journal.OpRename && under(r.From):
				return true, true
			case (r.Op == journal.OpDelete || r.Op == journal.OpRescan) && under(r.Path):
				return false, true
			}
		}
		return false, false
	}
	if renamed, ok := explain(recs[i+1:]); ok {
		return renamed
	}
	deadline := time.Now().Add(ExplainWait)
	for {
		if !sh.peeked && len(recs) > 0 {
			sh.peeked = true
			sh.peek, _ = sh.s.j.Read(recs[len(recs)-1].Seq+1, 4*ReadBatch)
		}
		if renamed, ok := explain(sh.peek); ok {
			return renamed
		}
		if time.Now().After(deadline) || len(sh.peek) >= 4*ReadBatch {
			return false
		}
		time.Sleep(5 * time.Millisecond)
		sh.peeked = false
	}
}

// wasSkipped reports whether p or one of its ancestors was skipped.
func wasSkipped(skipped map[string]uint64, p string) bool {
	for a := p; ; {
		if _, ok := skipped[a]; ok {
			return true
		}
		i := strings.LastIndexByte(a, '/')
		if i < 0 {
			return false
		}
		a = a[:i]
	}
}

// parents returns the current metadata of the directories containing ps.
func (sh *shipper) parents(ps ...string) []fsys.Entry {
	var outp []fsys.Entry
	seen := map[string]bool{}
	for _, p := range ps {
		if p == "" {
			continue
		}
		d := parentDir(p)
		if seen[d] {
			continue
		}
		seen[d] = true
		if e, err := sh.root.Lstat(d); err == nil && e.Type == fsys.TypeDir {
			outp = append(outp, e)
		}
	}
	return outp
}

// stateOps makes the target's r.Path what the source's is now.
func (sh *shipper) stateOps(r journal.Record, recs []journal.Record, i int, full bool, skipped map[string]uint64) ([]out, error) {
	e, err := sh.root.Lstat(r.Path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fsys.ErrSymlinkInPath) || isNotDir(err) {
		// A delete record explains the disappearance itself; any other
		// record of a vanished path may have been renamed away since.
		if r.Op != journal.OpDelete && sh.renamedLater(recs, i, r.Path) {
			skipped[r.Path] = 0
			return nil, nil
		}
		if r.Path == "" {
			return nil, nil
		}
		ops := []out{{op: wire.SyncOp{Op: wire.SyncOpDelete, Path: r.Path, Parents: sh.parents(r.Path)}}}
		if key, ok := sh.names[r.Path]; ok && r.Op != journal.OpCreate {
			// The change may have been written through this name into an
			// inode other names still share: ship one of them.
			if q, ok := sh.otherName(key, r.Path); ok {
				ops = append(ops, sh.putOp(q, false, false))
			}
		}
		sh.forget(r.Path)
		return ops, nil
	}
	if err != nil {
		return nil, err
	}
	if e.Type == fsys.TypeDir && r.Op == journal.OpCreate && r.Path != "" {
		// A directory that appears may have arrived with content (moved in
		// from outside the root): ship its whole subtree.
		return sh.walkOps(r.Path)
	}
	return append([]out{sh.putOp(e, r.Op == journal.OpCreate, full)}, sh.relink(e, full)...), nil
}

func isNotDir(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "not a directory"
}

// putOp builds the op that makes e.Path look like e.
func (sh *shipper) putOp(e fsys.Entry, created, full bool) out {
	o := out{op: wire.SyncOp{Op: wire.SyncOpPut, Path: e.Path, Entry: e, Parents: sh.parents(e.Path)}}
	if e.Type != fsys.TypeFile {
		return o
	}
	if e.Nlink > 1 {
		// Keep hardlink groups: link this name to a known name of the same
		// inode, and write content through the shared inode (in place).
		key := inoKey{e.Dev, e.Ino}
		sh.addName(e.Path, key)
		o.op.InPlace = true
		o.content = true
		q, ok := sh.links[key]
		if !ok {
			q, ok = sh.findLink(e)
		}
		if ok && q != e.Path && !full {
			if qe, err := sh.root.Lstat(q); err == nil && qe.Ino == e.Ino && qe.Dev == e.Dev {
				o.op.Op, o.op.LinkTo = wire.SyncOpLink, q
				o.content = !created
				return o
			}
		}
		sh.links[key] = e.Path
		return o
	}
	sh.noteFile(e)
	o.content = true
	if h, ok := sh.hashes[e.Path]; ok && !full && e.Size >= DeltaMin {
		o.op.Op = wire.SyncOpDelta
		o.delta = h.hashes
	}
	return o
}

// renameOps moves r.From to r.Path on the target.
func (sh *shipper) renameOps(r journal.Record, recs []journal.Record, i int, full bool, skipped map[string]uint64) ([]out, error) {
	e, err := sh.root.Lstat(r.Path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fsys.ErrSymlinkInPath) || isNotDir(err) {
		if sh.renamedLater(recs, i, r.Path) {
			skipped[r.Path] = 0
		}
		// Move it anyway: a later record says where r.Path went.
		sh.move(r.From, r.Path)
		return []out{{op: wire.SyncOp{Op: wire.SyncOpRename, From: r.From, Path: r.Path, Parents: sh.parents(r.From, r.Path)}}}, nil
	}
	if err != nil {
		return nil, err
	}
	sh.move(r.From, r.Path)
	o := out{op: wire.SyncOp{Op: wire.SyncOpRename, From: r.From, Path: r.Path, Entry: e, Parents: sh.parents(r.From, r.Path)}}
	needContent := full || wasSkipped(skipped, r.From)
	var moved []string // skipped descendants of From, now under Path
	for sk, by := range skipped {
		if sk == r.From || strings.HasPrefix(sk, r.From+"/") {
			// Kept until this rename is acknowledged: a replay after a
			// reconnect must ship the same content again.
			if by == 0 || by > r.Seq {
				skipped[sk] = r.Seq
			}
			if sk != r.From {
				moved = append(moved, r.Path+sk[len(r.From):])
			}
		}
	}
	switch {
	case e.Type == fsys.TypeFile && needContent:
		o.content = true
		o.op.InPlace = e.Nlink > 1
		delete(sh.hashes, r.Path)
		return append([]out{o}, sh.relink(e, full)...), nil
	case e.Type == fsys.TypeDir && !needContent:
		// Objects created inside From just before the rename were skipped
		// (they had vanished under From): ship them at their new path.
		ops := []out{o}
		for _, np := range moved {
			{
				if ne, err := sh.root.Lstat(np); err == nil {
					if ne.Type == fsys.TypeDir {
						walk, err := sh.walkOps(np)
						if err != nil {
							return nil, err
						}
						ops = append(ops, walk...)
					} else {
						ops = append(ops, sh.putOp(ne, true, false))
					}
				}
			}
		}
		return ops, nil
	case e.Type == fsys.TypeDir && needContent:
		// The target may not have From: rebuild the directory instead.
		walk, err := sh.walkOps(r.Path)
		if err != nil {
			return nil, err
		}
		del := out{op: wire.SyncOp{Op: wire.SyncOpDelete, Path: r.From, Parents: sh.parents(r.From)}}
		return append([]out{del}, walk...), nil
	}
	return []out{o}, nil
}

// move updates the caches after a rename.
func (sh *shipper) move(from, to string) {
	for k, v := range sh.hashes {
		if k == from || strings.HasPrefix(k, from+"/") {
			delete(sh.hashes, k)
			sh.hashes[to+k[len(from):]] = v
		}
	}
	for k, v := range sh.links {
		if v == from || strings.HasPrefix(v, from+"/") {
			sh.links[k] = to + v[len(from):]
		}
	}
	var moved []string
	for k := range sh.names {
		if k == from || strings.HasPrefix(k, from+"/") {
			moved = append(moved, k)
		}
	}
	for _, k := range moved {
		key := sh.names[k]
		sh.dropName(k)
		sh.addName(to+k[len(from):], key)
	}
}

// forget drops the caches of a deleted path.
func (sh *shipper) forget(p string) {
	for k := range sh.hashes {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(sh.hashes, k)
		}
	}
	sh.dropName(p)
}

// addName records p as a shipped name of the multiply linked inode key.
func (sh *shipper) addName(p string, key inoKey) {
	if len(sh.names) >= MaxLinkMap {
		clear(sh.names)
		clear(sh.groups)
	}
	if old, ok := sh.names[p]; ok && old != key {
		sh.dropName(p)
	}
	sh.names[p] = key
	g := sh.groups[key]
	if g == nil {
		g = map[string]bool{}
		sh.groups[key] = g
	}
	g[p] = true
}

func (sh *shipper) dropName(p string) {
	key, ok := sh.names[p]
	if !ok {
		return
	}
	delete(sh.names, p)
	if g := sh.groups[key]; g != nil {
		delete(g, p)
		if len(g) == 0 {
			delete(sh.groups, key)
		}
	}
}

// otherName returns the entry of a current name of inode key other than
// p, if any.
func (sh *shipper) otherName(key inoKey, p string) (fsys.Entry, bool) {
	if q, ok := sh.links[key]; ok && q != p {
		if qe, err := sh.root.Lstat(q); err == nil && qe.Ino == key.ino && qe.Dev == key.dev {
			return qe, true
		}
	}
	for _, q := range sh.findLinks(fsys.Entry{Path: p, Dev: key.dev, Ino: key.ino}, 1) {
		if qe, err := sh.root.Lstat(q); err == nil {
			return qe, true
		}
	}
	return fsys.Entry{}, false
}

// walkOps ships the whole subtree at rel: every object, then a prune of
// each directory (which also sets the directory's metadata last).
func (sh *shipper) walkOps(rel string) ([]out, error) {
	var ops []out
	var walk func(dir fsys.Entry) error
	walk = func(dir fsys.Entry) error {
		ops = append(ops, out{op: wire.SyncOp{Op: wire.SyncOpPut, Path: dir.Path, Entry: dir}})
		kids, err := sh.root.ReadDir(dir.Path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		names := make([]string, 0, len(kids))
		for _, k := range kids {
			p := joinRel(dir.Path, k.Path)
			if sh.s.excluded(p) {
				continue
			}
			names = append(names, k.Path)
			e, err := sh.root.Lstat(p)
			if err != nil {
				continue // vanished: its own record follows
			}
			if e.Type == fsys.TypeDir {
				if err := walk(e); err != nil {
					return err
				}
				continue
			}
			o := sh.putOp(e, true, true)
			o.op.Parents = nil
			ops = append(ops, o)
		}
		final, err := sh.root.Lstat(dir.Path)
		if err != nil {
			final = dir
		}
		ops = append(ops, out{op: wire.SyncOp{Op: wire.SyncOpPrune, Path: dir.Path, Names: names, Parents: []fsys.Entry{final}}})
		return nil
	}
	e, err := sh.root.Lstat(rel)
	if err != nil {
		return nil, nil
	}
	if err := walk(e); err != nil {
		return nil, err
	}
	ops[len(ops)-1].op.Parents = append(ops[len(ops)-1].op.Parents, sh.parents(rel)...)
	return ops, nil
}

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

// MaxLinkMap bounds the inode → name map of shipped files.
const MaxLinkMap = 1 << 20

// noteFile remembers a shipped file's name by inode, so a hardlink made to
// it later ships as a link.
func (sh *shipper) noteFile(e fsys.Entry) {
	if len(sh.links) >= MaxLinkMap {
		clear(sh.links)
	}
	sh.links[inoKey{e.Dev, e.Ino}] = e.Path
}

// LinkSearchMax bounds the directory entries findLink reads.
const LinkSearchMax = 200_000

// findLink looks for another name of e's inode in the tree (a hardlink to
// a file the sync has not shipped, e.g. one the mirror copied): a
// breadth-first walk of directory listings (which carry inode numbers),
// bounded by LinkSearchMax entries.
func (sh *shipper) findLink(e fsys.Entry) (string, bool) {
	names := sh.findLinks(e, 1)
	if len(names) == 0 {
		return "", false
	}
	return names[0], true
}

// findLinks returns up to n other names of e's inode in the tree.
func (sh *shipper) findLinks(e fsys.Entry, n int) []string {
	var found []string
	queue := []string{""}
	seen := 0
	for len(queue) > 0 && seen < LinkSearchMax && len(found) < n {
		dir := queue[0]
		queue = queue[1:]
		kids, err := sh.root.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, k := range kids {
			seen++
			p := joinRel(dir, k.Path)
			switch {
			case k.Type == fsys.TypeDir:
				if !sh.s.excluded(p) {
					queue = append(queue, p)
				}
			case k.Ino == e.Ino && p != e.Path && !sh.s.excluded(p):
				if qe, err := sh.root.Lstat(p); err == nil && qe.Dev == e.Dev && qe.Ino == e.Ino {
					found = append(found, p)
				}
			}
		}
	}
	return found
}

// relink links every other current name of a multiply linked file to it
// on the target, so the group there is exactly the source's, whatever
// splits earlier failures or replays caused. Names come from the index of
// shipped names; a directory walk (findLinks) completes it when the index
// knows fewer names than the link count.
func (sh *shipper) relink(e fsys.Entry, _ bool) []out {
	if e.Type != fsys.TypeFile || e.Nlink < 2 {
		return nil
	}
	key := inoKey{e.Dev, e.Ino}
	var names []string
	for q := range sh.groups[key] {
		if q == e.Path {
			continue
		}
		if qe, err := sh.root.Lstat(q); err == nil && qe.Ino == e.Ino && qe.Dev == e.Dev {
			names = append(names, q)
		} else {
			sh.dropName(q)
		}
	}
	if len(names) < int(e.Nlink)-1 {
		names = sh.findLinks(e, int(e.Nlink)-1)
	}
	var ops []out
	for _, q := range names {
		qe, err := sh.root.Lstat(q)
		if err != nil {
			continue
		}
		sh.addName(q, key)
		ops = append(ops, out{op: wire.SyncOp{Op: wire.SyncOpLink, Path: q, LinkTo: e.Path, Entry: qe, Parents: sh.parents(q)}})
	}
	return ops
}
