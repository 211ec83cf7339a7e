package replicate

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"
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
			if err := sh.s.mirror(ctx, r.Path); err != nil {
				return err
			}
			sh.dropUnverified()
			sh.clearHashes()
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
			sh.peek, _ = sh.s.j.ReadWritten(recs[len(recs)-1].Seq+1, 4*ReadBatch)
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
	return errors.As(err, &pe) && errors.Is(pe.Err, syscall.ENOTDIR)
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
		sh.dropHashes(r.Path)
		return append([]out{o}, sh.relink(e, full)...), nil
	case e.Type == fsys.TypeDir && !needContent:
		// Objects created or changed inside From just before the rename
		// were skipped (they had vanished under From): ship them, content
		// included, at their new path.
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
						// Not created: the skipped records may have
						// changed the content (a write through this name
						// of a multiply linked inode), so a link to
						// another name must carry the content too.
						ops = append(ops, sh.putOp(ne, false, false))
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
	if from == to {
		return
	}
	// A file renamed over another replaces it: what the target held
	// under to (its hashes, its place among links) is gone.
	sh.forget(to)
	for k, v := range sh.hashes {
		if k == from || strings.HasPrefix(k, from+"/") {
			sh.dropHashes(k)
			nk := to + k[len(from):]
			sh.putHashes(nk, v)
			if v.sw != nil {
				if err := sh.s.unverified.add(nk); err != nil {
					// Not durable under its new name: ship it in full.
					sh.dropHashes(nk)
					sh.inject(nk, v.size)
				}
				sh.s.unverified.done(k)
			}
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
	for k, v := range sh.hashes {
		if k == p || strings.HasPrefix(k, p+"/") {
			if v.sw != nil {
				sh.s.unverified.done(k)
			}
			sh.dropHashes(k)
		}
	}
	sh.dropName(p)
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
