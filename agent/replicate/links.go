package replicate

import (
	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

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

// MaxWalkedNames bounds the names findLinks remembers from its walks.
const MaxWalkedNames = 1 << 18

// findLinks returns up to n other names of e's inode in the tree: the
// names earlier walks saw for its inode number when enough of them still
// are its names, else from a walk. (At 1,000 changes a second a walk of a
// tree of 50,000 entries for each new link to a file the sync never
// shipped held every change behind it for 100-400 ms.)
func (sh *shipper) findLinks(e fsys.Entry, n int) []string {
	if found := sh.walkedLinks(e, n); len(found) >= n {
		return found
	}
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
			if k.Type == fsys.TypeDir {
				if !sh.s.excluded(p) {
					queue = append(queue, p)
				}
				continue
			}
			sh.noteWalked(k.Ino, p)
			if k.Ino == e.Ino && p != e.Path && !sh.s.excluded(p) {
				if qe, err := sh.root.Lstat(p); err == nil && qe.Dev == e.Dev && qe.Ino == e.Ino {
					found = append(found, p)
				}
			}
		}
	}
	return found
}

// walkedLinks returns up to n of the names walks saw for e's inode number
// that are still other names of e's inode (checked with lstat: the file
// may have been renamed or deleted, its number reused, since).
func (sh *shipper) walkedLinks(e fsys.Entry, n int) []string {
	var found []string
	for _, p := range sh.walked[e.Ino] {
		if len(found) == n {
			break
		}
		if p == e.Path || sh.s.excluded(p) {
			continue
		}
		if qe, err := sh.root.Lstat(p); err == nil && qe.Dev == e.Dev && qe.Ino == e.Ino {
			found = append(found, p)
		}
	}
	return found
}

// noteWalked remembers that a walk saw name p with inode number ino.
func (sh *shipper) noteWalked(ino uint64, p string) {
	if sh.walked == nil || sh.walkedNames >= MaxWalkedNames {
		sh.walked, sh.walkedNames = map[uint64][]string{}, 0
	}
	for _, q := range sh.walked[ino] {
		if q == p {
			return
		}
	}
	sh.walked[ino] = append(sh.walked[ino], p)
	sh.walkedNames++
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

// dropLinkHashes forgets the hashes of the other names of p's inode once
// content shipped through p: the target's copies of them changed with it
// (when linked there) or are no longer what the hashes say, so their next
// change ships in full instead of as a delta or an append the target
// would refuse. A name whose appended tail was still to be proven ships
// again now.
func (sh *shipper) dropLinkHashes(p string) {
	key, ok := sh.names[p]
	if !ok {
		return
	}
	for q := range sh.groups[key] {
		h, ok := sh.hashes[q]
		if q == p || !ok {
			continue
		}
		sh.dropHashes(q)
		if h.sw != nil {
			sh.inject(q, h.size)
		}
	}
}
