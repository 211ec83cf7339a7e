// Package workload generates a bounded, seeded mix of file-system changes
// under a directory (creates, appends, overwrites, truncates, renames of
// files and of whole directories, deletes, chmod, xattrs, hardlinks,
// symlinks, atomic saves, block writes into large files), for the sync
// engine's tests and benchmark.
package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Config configures Run.
type Config struct {
	Root string
	Seed uint64
	// Rate is operations a second; 0 runs as fast as possible.
	Rate int
	// Duration bounds the run (it also ends with ctx).
	Duration time.Duration
	// MaxFiles caps the regular files kept (creates turn into deletes).
	MaxFiles int
	// BigSize is the size of the large files written block-wise (0: 6 MiB;
	// negative: none).
	BigSize int64
	// Ignore lists relative paths (e.g. a probe directory) the workload
	// never touches.
	Ignore []string
	// OnOp, if set, is called after each operation with its kind.
	OnOp func(kind string)
}

// Stats counts the operations done, by kind.
type Stats struct {
	Ops    int
	ByKind map[string]int
}

type state struct {
	cfg   Config
	rng   *rand.Rand
	dirs  []string // relative; "" is the root
	files []string
	bigs  []string
	n     int
	buf   []byte
}

// Run applies operations under cfg.Root until Duration has passed or ctx
// ends. Failures of single operations (a race with nothing, since Run is
// the only writer) are counted as "failed" and skipped.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = 400
	}
	if cfg.BigSize == 0 {
		cfg.BigSize = 6 << 20
	}
	s := &state{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), dirs: []string{""}, buf: make([]byte, 256<<10)}
	if err := s.scan(); err != nil {
		return Stats{}, err
	}
	st := Stats{ByKind: map[string]int{}}
	end := time.Now().Add(cfg.Duration)
	var tick <-chan time.Time
	if cfg.Rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				return st, nil
			}
		}
		kind, err := s.step()
		if err != nil {
			kind = "failed:" + kind
		}
		st.Ops++
		st.ByKind[kind]++
		if cfg.OnOp != nil {
			cfg.OnOp(kind)
		}
	}
	return st, nil
}

// scan learns what already exists under the root.
func (s *state) scan() error {
	return filepath.WalkDir(s.cfg.Root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.cfg.Root, p)
		if rel == "." {
			return nil
		}
		if slices.Contains(s.cfg.Ignore, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			s.dirs = append(s.dirs, rel)
		case d.Type().IsRegular():
			s.files = append(s.files, rel)
		}
		return nil
	})
}

func (s *state) abs(rel string) string { return filepath.Join(s.cfg.Root, rel) }

func (s *state) name(prefix string) string {
	s.n++
	return fmt.Sprintf("%s%d-%d", prefix, s.cfg.Seed%1000, s.n)
}

func (s *state) pick(l []string) string { return l[s.rng.IntN(len(l))] }

func (s *state) data(n int) []byte {
	if n > len(s.buf) {
		n = len(s.buf)
	}
	for i := 0; i < n; i += 8 {
		v := s.rng.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			s.buf[i+k] = byte(v >> (8 * k))
		}
	}
	return s.buf[:n]
}

var weights = []struct {
	kind string
	w    int
}{
	{"create", 15}, {"append", 10}, {"overwrite", 10}, {"truncate", 5}, {"rename", 8},
	{"renamedir", 3}, {"mkdir", 6}, {"delete", 6}, {"rmtree", 2}, {"chmod", 6}, {"xattr", 5},
	{"hardlink", 3}, {"symlink", 3}, {"atomicsave", 5}, {"big", 2},
}

func (s *state) step() (string, error) {
	total := 0
	for _, w := range weights {
		total += w.w
	}
	r := s.rng.IntN(total)
	kind := ""
	for _, w := range weights {
		if r < w.w {
			kind = w.kind
			break
		}
		r -= w.w
	}
	if len(s.files) == 0 && kind != "mkdir" && kind != "big" {
		kind = "create"
	}
	if len(s.files) >= s.cfg.MaxFiles && (kind == "create" || kind == "hardlink" || kind == "symlink") {
		kind = "delete"
	}
	return kind, s.do(kind)
}

func (s *state) do(kind string) error {
	switch kind {
	case "create":
		rel := filepath.Join(s.pick(s.dirs), s.name("f"))
		if err := os.WriteFile(s.abs(rel), s.data(s.rng.IntN(32<<10)), 0o644); err != nil {
			return err
		}
		s.files = append(s.files, rel)
	case "append":
		f, err := os.OpenFile(s.abs(s.pick(s.files)), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(s.data(1 + s.rng.IntN(8<<10)))
		f.Close()
		return err
	case "overwrite":
		f, err := os.OpenFile(s.abs(s.pick(s.files)), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(s.data(1+s.rng.IntN(4<<10)), int64(s.rng.IntN(16<<10)))
		f.Close()
		return err
	case "truncate":
		return os.Truncate(s.abs(s.pick(s.files)), int64(s.rng.IntN(8<<10)))
	case "rename":
		from := s.pick(s.files)
		to := filepath.Join(s.pick(s.dirs), s.name("r"))
		if len(s.files) > 1 && s.rng.IntN(4) == 0 {
			to = s.pick(s.files) // replace an existing file
		}
		if to == from {
			return nil
		}
		if err := os.Rename(s.abs(from), s.abs(to)); err != nil {
			return err
		}
		s.files = slices.DeleteFunc(s.files, func(f string) bool { return f == to })
		for k, f := range s.files {
			if f == from {
				s.files[k] = to
			}
		}
	case "renamedir":
		if len(s.dirs) < 2 {
			return s.do("mkdir")
		}
		from := s.dirs[1+s.rng.IntN(len(s.dirs)-1)]
		parent := s.pick(s.dirs)
		if parent == from || strings.HasPrefix(parent, from+"/") {
			return nil
		}
		to := filepath.Join(parent, s.name("d"))
		if err := os.Rename(s.abs(from), s.abs(to)); err != nil {
			return err
		}
		s.movePrefix(from, to)
	case "mkdir":
		if len(s.dirs) > 60 {
			return s.do("create")
		}
		rel := filepath.Join(s.pick(s.dirs), s.name("d"))
		if err := os.Mkdir(s.abs(rel), 0o755); err != nil {
			return err
		}
		s.dirs = append(s.dirs, rel)
	case "delete":
		i := s.rng.IntN(len(s.files))
		if err := os.Remove(s.abs(s.files[i])); err != nil {
			return err
		}
		s.files = slices.Delete(s.files, i, i+1)
	case "rmtree":
		if len(s.dirs) < 4 {
			return nil
		}
		d := s.dirs[1+s.rng.IntN(len(s.dirs)-1)]
		if err := os.RemoveAll(s.abs(d)); err != nil {
			return err
		}
		in := func(p string) bool { return p == d || strings.HasPrefix(p, d+"/") }
		s.dirs = slices.DeleteFunc(s.dirs, in)
		s.files = slices.DeleteFunc(s.files, in)
		s.bigs = slices.DeleteFunc(s.bigs, in)
	case "chmod":
		return os.Chmod(s.abs(s.pick(s.files)), os.FileMode(0o600|s.rng.IntN(0o100)))
	case "xattr":
		p := s.abs(s.pick(s.files))
		if s.rng.IntN(3) == 0 {
			unix.Removexattr(p, "user.ferry")
			return nil
		}
		return unix.Setxattr(p, "user.ferry", s.data(1+s.rng.IntN(64)), 0)
	case "hardlink":
		rel := filepath.Join(s.pick(s.dirs), s.name("h"))
		if err := os.Link(s.abs(s.pick(s.files)), s.abs(rel)); err != nil {
			return err
		}
		s.files = append(s.files, rel)
	case "symlink":
		rel := filepath.Join(s.pick(s.dirs), s.name("l"))
		return os.Symlink("../"+s.pick(s.files), s.abs(rel))
	case "atomicsave":
		final := s.pick(s.files)
		tmp := filepath.Join(filepath.Dir(final), s.name(".tmp"))
		if err := os.WriteFile(s.abs(tmp), s.data(s.rng.IntN(16<<10)), 0o640); err != nil {
			return err
		}
		return os.Rename(s.abs(tmp), s.abs(final))
	case "big":
		if s.cfg.BigSize < 0 {
			return s.do("append")
		}
		if len(s.bigs) == 0 || s.rng.IntN(4) == 0 && len(s.bigs) < 3 {
			rel := filepath.Join(s.pick(s.dirs), s.name("big"))
			f, err := os.Create(s.abs(rel))
			if err != nil {
				return err
			}
			for off := int64(0); off < s.cfg.BigSize; off += int64(len(s.buf)) {
				if _, err := f.Write(s.data(int(min(int64(len(s.buf)), s.cfg.BigSize-off)))); err != nil {
					f.Close()
					return err
				}
			}
			f.Close()
			s.bigs = append(s.bigs, rel)
			return nil
		}
		f, err := os.OpenFile(s.abs(s.pick(s.bigs)), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(s.data(4096), s.rng.Int64N(s.cfg.BigSize))
		f.Close()
		return err
	}
	return nil
}

// movePrefix renames every known path under from to lie under to.
func (s *state) movePrefix(from, to string) {
	mv := func(l []string) {
		for i, p := range l {
			if p == from || strings.HasPrefix(p, from+"/") {
				l[i] = to + p[len(from):]
			}
		}
	}
	mv(s.dirs)
	mv(s.files)
	mv(s.bigs)
}
