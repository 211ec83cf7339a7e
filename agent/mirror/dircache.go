package mirror

import (
	"os"
	"path"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// splitRel splits a relative path into its directory ("" for the root) and
// final name.
func splitRel(rel string) (dir, name string) {
	dir, name = path.Split(rel)
	if dir != "" {
		dir = dir[:len(dir)-1]
	}
	return dir, name
}

// statCache answers Lstat for consecutive entries of one directory through
// one open directory fd (entries arrive grouped by directory), saving the
// per-call resolution of the parent. The fd comes from Root.OpenDir, so it
// is beneath the root; it is dropped whenever an entry at or above it is
// replaced. Used by one goroutine.
type statCache struct {
	root *fsys.Root
	rel  string
	dir  *os.File
}

// lstat is Root.Lstat through the cached directory.
func (c *statCache) lstat(rel string) (fsys.Entry, error) {
	if rel == "" {
		return c.root.Lstat("")
	}
	dir, name := splitRel(rel)
	if c.dir == nil || c.rel != dir {
		c.close()
		f, err := c.root.OpenDir(dir)
		if err != nil {
			return c.root.Lstat(rel) // the precise error
		}
		c.dir, c.rel = f, dir
	}
	e, err := fsys.Lstat(int(c.dir.Fd()), name)
	if err != nil {
		return fsys.Entry{}, &os.PathError{Op: "lstat", Path: rel, Err: unwrapPath(err)}
	}
	e.Path = rel
	return e, nil
}

// invalidate drops the cached directory if rel is it or one of its parents.
func (c *statCache) invalidate(rel string) {
	if c.dir != nil && (rel == "" || c.rel == rel || len(c.rel) > len(rel) && c.rel[:len(rel)+1] == rel+"/") {
		c.close()
	}
}

func (c *statCache) close() {
	if c.dir != nil {
		c.dir.Close()
		c.dir = nil
	}
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// subRoots keeps Root.Sub handles of directories for one apply worker, so
// that creating a temporary file and renaming it into place resolve no
// path. A handle stays valid (beneath the root) even if its directory is
// later renamed or replaced by a symlink: writes then land in the original
// directory, never through the symlink.
type subRoots struct {
	root *fsys.Root
	m    map[string]*subRoot
	last string
}

type subRoot struct {
	r    *fsys.Root
	refs int
}

// get returns the sub-root of dir with a reference; release it with put.
func (s *subRoots) get(dir string) (*fsys.Root, error) {
	if dir == "" {
		return s.root, nil
	}
	if s.m == nil {
		s.m = map[string]*subRoot{}
	}
	sr := s.m[dir]
	if sr == nil {
		r, err := s.root.Sub(dir)
		if err != nil {
			return nil, err
		}
		sr = &subRoot{r: r}
		s.m[dir] = sr
	}
	sr.refs++
	if s.last != dir {
		prev := s.last
		s.last = dir
		s.drop(prev)
	}
	return sr.r, nil
}

// put releases a reference taken by get.
func (s *subRoots) put(dir string) {
	if dir == "" {
		return
	}
	if sr := s.m[dir]; sr != nil {
		sr.refs--
		s.drop(dir)
	}
}

// drop closes dir's handle when unreferenced and not the most recent.
func (s *subRoots) drop(dir string) {
	if sr := s.m[dir]; sr != nil && sr.refs <= 0 && dir != s.last {
		sr.r.Close()
		delete(s.m, dir)
	}
}

func (s *subRoots) closeAll() {
	for d, sr := range s.m {
		sr.r.Close()
		delete(s.m, d)
	}
}
