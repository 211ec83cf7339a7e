package mirror

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// Manifest scans the tree at rootAbs (with opts' excludes and profile) and
// returns every object sorted by path, regular files with their content
// hash, computed here (only hashes cross the wire). Objects that cannot be
// read are listed with Err set.
func Manifest(ctx context.Context, rootAbs string, opts Options, dataDir string) ([]wire.ManifestEntry, error) {
	if err := Normalize(&opts); err != nil {
		return nil, err
	}
	root, err := fsys.OpenRoot(rootAbs)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	defer root.Close()
	re, err := root.Lstat("")
	if err != nil {
		return nil, fmt.Errorf("stat root: %w", err)
	}
	var mu sync.Mutex
	var out []wire.ManifestEntry
	sc := &scanner{root: root, filter: NewFilter(&opts, rootAbs, dataDir, re.Dev), workers: 4,
		onErr: func(rel string, err error) error {
			mu.Lock()
			out = append(out, wire.ManifestEntry{Entry: fsys.Entry{Path: rel}, Err: err.Error()})
			mu.Unlock()
			return nil
		}}
	ch := make(chan []fsys.Entry, 16)
	errc := make(chan error, 1)
	go func() { defer close(ch); errc <- sc.run(ctx, ch) }()
	for batch := range ch {
		mu.Lock()
		for _, e := range batch {
			out = append(out, wire.ManifestEntry{Entry: e})
		}
		mu.Unlock()
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })

	// Hardlink groups: the smallest path names the group.
	type devIno struct{ dev, ino uint64 }
	groups := map[devIno][]int{}
	for i := range out {
		if e := &out[i]; e.Type == fsys.TypeFile && e.Nlink > 1 {
			k := devIno{e.Dev, e.Ino}
			groups[k] = append(groups[k], i)
		}
	}
	for _, idx := range groups {
		if len(idx) > 1 {
			for _, i := range idx {
				out[i].LinkKey = out[idx[0]].Path
			}
		}
	}

	// Content hashes, in parallel.
	work := make(chan int, 64)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			for i := range work {
				e := &out[i]
				f, err := root.Open(e.Path)
				if err != nil {
					e.Err = err.Error()
					continue
				}
				e.Hash, err = contentHash(f, e.Size, buf)
				f.Close()
				if err != nil {
					e.Err = err.Error()
				}
			}
		})
	}
	for i := range out {
		if out[i].Type == fsys.TypeFile && out[i].Err == "" {
			select {
			case work <- i:
			case <-ctx.Done():
			}
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	return out, nil
}

// Difference is one way the target differs from the source.
type Difference struct {
	Path  string          `json:"path"`
	Kinds []fsys.DiffKind `json:"kinds"`
	// Detail says more (e.g. an unreadable object's error).
	Detail string `json:"detail,omitempty"`
}

// Compare returns the differences between a source and a target manifest
// (both sorted by path): missing, extra, type, content, every metadata kind
// and hardlink structure. No difference means identical trees.
func Compare(src, dst []wire.ManifestEntry) []Difference {
	var out []Difference
	i, j := 0, 0
	for i < len(src) || j < len(dst) {
		switch {
		case j == len(dst) || (i < len(src) && src[i].Path < dst[j].Path):
			out = append(out, Difference{Path: src[i].Path, Kinds: []fsys.DiffKind{fsys.DiffMissing}})
			i++
		case i == len(src) || dst[j].Path < src[i].Path:
			out = append(out, Difference{Path: dst[j].Path, Kinds: []fsys.DiffKind{fsys.DiffExtra}})
			j++
		default:
			if d, ok := compareOne(&src[i], &dst[j]); ok {
				out = append(out, d)
			}
			i++
			j++
		}
	}
	return out
}

func compareOne(s, d *wire.ManifestEntry) (Difference, bool) {
	diff := Difference{Path: s.Path}
	if s.Err != "" || d.Err != "" {
		diff.Kinds = []fsys.DiffKind{fsys.DiffContent}
		diff.Detail = fmt.Sprintf("unreadable: source %q, target %q", s.Err, d.Err)
		return diff, true
	}
	diff.Kinds = fsys.CompareMeta(s.Entry, d.Entry)
	if s.Type == fsys.TypeFile && d.Type == fsys.TypeFile && s.Size == d.Size && !bytes.Equal(s.Hash[:], d.Hash[:]) {
		diff.Kinds = append(diff.Kinds, fsys.DiffContent)
	}
	if s.LinkKey != d.LinkKey && s.Type == d.Type {
		diff.Kinds = append(diff.Kinds, fsys.DiffHardlink)
		diff.Detail = fmt.Sprintf("hardlink group: source %q, target %q", s.LinkKey, d.LinkKey)
	}
	return diff, len(diff.Kinds) > 0
}
