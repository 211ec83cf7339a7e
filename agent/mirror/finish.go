package mirror

import (
	"context"
	"errors"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// finish runs after all content is in place: hardlinks, orphans, then the
// metadata of directories, deepest first (their times after their content,
// read-only modes after they were filled).
func (r *Receiver) finish(ctx context.Context) error {
	for _, l := range r.links {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		r.applyLink(l)
	}
	r.dropUnresumable()
	if r.Job.Opts.Orphans != wire.OrphansKeep || !r.prevClean {
		if err := r.orphans(ctx); err != nil {
			return err
		}
	}
	sort.SliceStable(r.dirs, func(i, j int) bool {
		return strings.Count(r.dirs[i].Path, "/")+boolInt(r.dirs[i].Path != "") >
			strings.Count(r.dirs[j].Path, "/")+boolInt(r.dirs[j].Path != "")
	})
	for i := range r.dirs {
		d := &r.dirs[i]
		cur, err := r.root.Lstat(d.Path)
		if err != nil {
			r.objErr(d.Path, err)
			continue
		}
		r.fixMeta(d, cur)
	}
	if r.ckpt.dir != "" && len(r.ckpt.all()) == 0 {
		os.RemoveAll(r.ckpt.dir) // the partial/ directory; the job keeps its clean mark
		r.ckpt.markClean()
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// applyLink makes l.Path a hardlink of l.LinkTo (unless it already is).
func (r *Receiver) applyLink(l wire.FileEntry) {
	if r.skipped[l.LinkTo] {
		return
	}
	want, err := r.root.Lstat(l.LinkTo)
	if err != nil {
		r.objErr(l.Path, err)
		return
	}
	if cur, err := r.root.Lstat(l.Path); err == nil && cur.Dev == want.Dev && cur.Ino == want.Ino {
		return
	}
	tmp := tempName(l.Path)
	if err := r.root.Link(l.LinkTo, tmp); err != nil {
		r.objErr(l.Path, err)
		return
	}
	if err := r.install(tmp, l.Path); err != nil {
		r.objErr(l.Path, err)
		r.root.Remove(tmp)
		return
	}
	r.mu.Lock()
	r.sum.FilesWritten++
	r.mu.Unlock()
}

// tempRE matches the names of temporaries left by an interrupted run.
var tempRE = regexp.MustCompile(`^\.ferry\..*\.[0-9a-f]{16}$`)

// orphans walks the target tree: stale temporaries are removed; objects the
// source does not have are kept, deleted or moved per the policy. Excluded
// paths, paths the source could not read, the orphan directory and
// checkpointed temporaries are left alone.
//
// The walk only reads (a few workers list directories in parallel: on a
// no-change run it is most of the receiver's work after the last answer);
// what it found is then acted on in path order by this goroutine.
func (r *Receiver) orphans(ctx context.Context) error {
	opts := &r.Job.Opts
	var moveDir string
	if opts.Orphans == wire.OrphansMove {
		moveDir = strings.Trim(path.Clean(opts.OrphanDir), "/")
	}
	type hit struct {
		rel  string
		temp bool
	}
	var (
		mu      sync.Mutex
		hits    []hit
		pending = 1 // directories queued or being listed
	)
	dirs := newQueue[string]()
	dirs.Push("")
	list := func(dir string) (subdirs []string, found []hit) {
		f, err := r.root.OpenDir(dir)
		if err != nil {
			r.objErr(dir, err)
			return nil, nil
		}
		names, err := fsys.ReadDir(int(f.Fd()))
		f.Close()
		if err != nil {
			r.objErr(dir, err)
			return nil, nil
		}
		seen := r.seenIn(dir)
		for _, n := range names {
			// names and seen are both sorted: merge.
			for len(seen) > 0 && seen[0] < n.Path {
				seen = seen[1:]
			}
			if len(seen) > 0 && seen[0] == n.Path {
				if n.Type == fsys.TypeDir {
					subdirs = append(subdirs, joinRel(dir, n.Path))
				}
				continue
			}
			rel := joinRel(dir, n.Path)
			if tempRE.MatchString(n.Path) {
				found = append(found, hit{rel: rel, temp: true})
				continue
			}
			if r.skipped[rel] || r.filter.ExcludedName(rel) || rel == moveDir {
				continue
			}
			found = append(found, hit{rel: rel})
		}
		return subdirs, found
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				dir, ok := dirs.Pop()
				if !ok {
					return
				}
				var subdirs []string
				var found []hit
				if ctx.Err() == nil {
					subdirs, found = list(dir)
				}
				mu.Lock()
				hits = append(hits, found...)
				pending += len(subdirs) - 1
				for _, d := range subdirs {
					dirs.Push(d)
				}
				if pending == 0 {
					dirs.Close()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].rel < hits[j].rel })
	for _, h := range hits {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		rel := h.rel
		if h.temp {
			if !r.ckpt.tmpInUse(rel) {
				if err := r.root.RemoveAll(rel); err == nil {
					r.sum.TempsCleaned++
				}
			}
			continue
		}
		r.sum.OrphansFound++
		switch opts.Orphans {
		case wire.OrphansDelete:
			if err := r.root.RemoveAll(rel); err != nil {
				r.objErr(rel, err)
			} else {
				r.sum.OrphansRemoved++
			}
		case wire.OrphansMove:
			r.moveOrphan(rel, moveDir)
		}
	}
	return nil
}

// moveOrphan moves rel to moveDir/rel (creating parents).
func (r *Receiver) moveOrphan(rel, moveDir string) {
	dst := moveDir + "/" + rel
	if err := r.root.MkdirAll(path.Dir(dst)); err != nil {
		r.objErr(rel, err)
		return
	}
	if _, err := r.root.Lstat(dst); err == nil {
		if err := r.root.RemoveAll(dst); err != nil {
			r.objErr(rel, err)
			return
		}
	} else if !errors.Is(err, errNotExist) {
		r.objErr(rel, err)
		return
	}
	if err := r.root.Rename(rel, dst); err != nil {
		r.objErr(rel, err)
		return
	}
	r.sum.OrphansMoved++
}

// dropUnresumable forgets the checkpoints of files this complete run was
// not sent (gone from the source, or excluded now): no later run can
// resume them, and the orphan walk then removes their temporaries instead
// of keeping them for ever.
func (r *Receiver) dropUnresumable() {
	for _, p := range r.ckpt.all() {
		dir, name := splitRel(p.Path)
		if _, ok := slices.BinarySearch(r.seenIn(dir), name); ok || r.skipped[p.Path] {
			continue
		}
		r.ckpt.remove(p.Path)
	}
}
