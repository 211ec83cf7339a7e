package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"
)

// scanner walks a tree with several workers (directory reads and lstats of
// many small files overlap). Batches reach out in an order where every
// directory's own entry precedes its contents: a directory is queued for
// reading only after the batch naming it has been handed to out.
type scanner struct {
	root    *fsys.Root
	filter  *Filter
	workers int
	// onErr is called for an object that cannot be read; a non-nil return
	// aborts the scan.
	onErr func(rel string, err error) error
	// hashSmall makes the scan hash the content of regular files up to
	// smallFile bytes (strict mode), delivered in hashes.
	hashSmall bool
	hashes    sync.Map // relative path -> []byte
}

// run scans the whole tree. The root's own entry (Path "") comes first.
func (s *scanner) run(ctx context.Context, out chan<- []fsys.Entry) error {
	rootEntry, err := s.root.Lstat("")
	if err != nil {
		return fmt.Errorf("scan root: %w", err)
	}
	if rootEntry.Type != fsys.TypeDir {
		return fmt.Errorf("scan root: %s is not a directory", s.root.Name())
	}
	select {
	case out <- []fsys.Entry{rootEntry}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}

	dirs := newQueue[string]()
	var (
		mu       sync.Mutex
		pending  = 1 // directories queued or being read
		firstErr error
	)
	dirs.Push("")
	done := func(subdirs []string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
			dirs.Close()
		}
		pending += len(subdirs) - 1
		for _, d := range subdirs {
			dirs.Push(d)
		}
		if pending == 0 {
			dirs.Close()
		}
	}
	var wg sync.WaitGroup
	for range max(1, s.workers) {
		wg.Go(func() {
			for {
				rel, ok := dirs.Pop()
				if !ok {
					return
				}
				subdirs, err := s.readDir(ctx, rel, out)
				done(subdirs, err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}

// readDir lists one directory, sends its children's entries and returns the
// subdirectories to descend into.
func (s *scanner) readDir(ctx context.Context, rel string, out chan<- []fsys.Entry) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	f, err := s.root.OpenDir(rel)
	if err != nil {
		return nil, s.onErr(rel, err)
	}
	defer f.Close()
	fd := int(f.Fd())
	names, err := fsys.ReadDir(fd)
	if err != nil {
		return nil, s.onErr(rel, err)
	}
	batch := make([]fsys.Entry, 0, len(names))
	var hbuf []byte
	if s.hashSmall {
		hbuf = make([]byte, 64<<10)
	}
	var subdirs []string
	for _, n := range names {
		child := joinRel(rel, n.Path)
		if s.filter.ExcludedName(child) {
			continue
		}
		e, err := fsys.Lstat(fd, n.Path)
		if err != nil {
			if errors.Is(err, errNotExist) {
				continue // removed while listing
			}
			if err := s.onErr(child, err); err != nil {
				return nil, err
			}
			continue
		}
		e.Path = child
		if s.filter.Excluded(child, &e) {
			continue
		}
		if s.hashSmall && e.Type == fsys.TypeFile && e.Size > 0 && e.Size <= smallFile {
			if h, ok := hashAt(fd, n.Path, e.Size, hbuf); ok {
				s.hashes.Store(child, h)
			}
		}
		batch = append(batch, e)
		if e.Type == fsys.TypeDir && !s.filter.OtherMount(child, &e) {
			subdirs = append(subdirs, child)
		}
	}
	if len(batch) > 0 {
		select {
		case out <- batch:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return subdirs, nil
}

// joinRel joins a relative directory and a name ("" is the root).
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// hashAt returns the content hash of the regular file name in dirfd, if it
// can be read and still has the scanned size (else the target falls back to
// block hashes).
func hashAt(dirfd int, name string, size int64, buf []byte) ([]byte, bool) {
	// Raw fd calls: an *os.File would cost fcntl and epoll probes per file.
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != size {
		return nil, false
	}
	h := xxh3.New128()
	for off := int64(0); off < size; {
		n, err := unix.Pread(fd, buf[:min(int64(len(buf)), size-off)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return nil, false // unreadable or shrank: the target uses block hashes
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	sum := h.Sum128().Bytes()
	return sum[:], true
}
