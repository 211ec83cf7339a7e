package mirror

import (
	"bufio"
	"os"
	"path"
	"strings"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// ProfileSystem is the whole-system migration profile.
const ProfileSystem = "system"

// systemExcludes are the top-level directories a whole-system migration
// never copies (relative to a root of "/").
var systemExcludes = []string{"proc", "sys", "dev", "run", "tmp"}

// Filter decides which paths of a tree take part in a job.
type Filter struct {
	globs []string
	// exact holds relative paths excluded by the profile.
	exact map[string]bool
	// rootDev, when non-zero, excludes directories on another device
	// (other mounts) unless their path is in mounts.
	rootDev uint64
	mounts  map[string]bool
}

// NewFilter builds the filter of opts for the tree at rootAbs (an absolute
// path on this host). dataDir is the agent's own data directory (excluded
// when under the root); it may be "".
func NewFilter(opts *Options, rootAbs, dataDir string, rootDev uint64) *Filter {
	f := &Filter{globs: opts.Excludes, exact: map[string]bool{}}
	rel := func(abs string) (string, bool) {
		abs = path.Clean(abs)
		r := path.Clean(rootAbs)
		if r == "/" {
			return strings.TrimPrefix(abs, "/"), abs != "/"
		}
		if strings.HasPrefix(abs, r+"/") {
			return abs[len(r)+1:], true
		}
		return "", false
	}
	if dataDir != "" {
		if r, ok := rel(dataDir); ok {
			f.exact[r] = true
		}
	}
	if opts.Profile == ProfileSystem {
		for _, d := range systemExcludes {
			if r, ok := rel("/" + d); ok {
				f.exact[r] = true
			}
		}
		for _, sw := range swapFiles() {
			if r, ok := rel(sw); ok {
				f.exact[r] = true
			}
		}
		f.rootDev = rootDev
		f.mounts = map[string]bool{}
		for _, m := range opts.Mounts {
			if r, ok := rel(m); ok {
				f.mounts[r] = true
			}
		}
	}
	return f
}

// Excluded reports whether the object at rel (relative path) with entry e is
// left out. For a directory, everything beneath it is left out too.
func (f *Filter) Excluded(rel string, e *fsys.Entry) bool {
	if rel == "" {
		return false
	}
	return f.exact[rel] || f.matchGlobs(rel)
}

// OtherMount reports whether the directory e at rel is the root of another
// file system that the system profile does not descend into (it is still
// mirrored itself, as an empty mount point, like rsync -x does).
func (f *Filter) OtherMount(rel string, e *fsys.Entry) bool {
	return f.rootDev != 0 && e.Type == fsys.TypeDir && e.Dev != f.rootDev && !f.mounts[rel]
}

// ExcludedName is Excluded for a path whose metadata is not at hand (the
// orphan walk of the target); mount boundaries are not considered.
func (f *Filter) ExcludedName(rel string) bool {
	return rel != "" && (f.exact[rel] || f.matchGlobs(rel))
}

func (f *Filter) matchGlobs(rel string) bool {
	base := path.Base(rel)
	for _, g := range f.globs {
		if strings.HasPrefix(g, "/") {
			if ok, _ := matchGlob(g[1:], rel); ok {
				return true
			}
			continue
		}
		if ok, _ := matchGlob(g, rel); ok {
			return true
		}
		if !strings.Contains(g, "/") {
			if ok, _ := matchGlob(g, base); ok {
				return true
			}
		}
	}
	return false
}

// matchGlob is path.Match; a pattern ending in "/" matches a directory name
// the same way (the slash is dropped).
func matchGlob(pattern, name string) (bool, error) {
	return path.Match(strings.TrimSuffix(pattern, "/"), name)
}

// swapFiles lists the swap files and partitions in use on this host.
func swapFiles() []string {
	f, err := os.Open("/proc/swaps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 && strings.HasPrefix(fields[0], "/") {
			out = append(out, fields[0])
		}
	}
	return out
}
