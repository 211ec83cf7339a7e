// Package capture reports changes made under a directory tree on the source
// host, for continuous sync.
//
// Two backends exist. The preferred one is fanotify with a FAN_MARK_FILESYSTEM
// mark and FAN_REPORT_DFID_NAME|FAN_REPORT_TARGET_FID: one mark covers every
// directory of the filesystem, so no watch limit applies and new directories
// need no setup. The fallback is inotify with one watch per directory.
//
// Events are notices, not a log of content: a consumer reads the current
// content and metadata of a reported path when it ships it. Two properties of
// the kernel shape the contract:
//
//   - fanotify merges queued events for the same object (same directory, name
//     and inode, same process), so an event may appear at the position of an
//     earlier one. A merged create+delete is reported as OpRescan of the path.
//     A consumer must therefore tolerate a rename whose From is already gone
//     (apply it as a rescan of To).
//   - Whenever the backend cannot vouch for having seen everything (queue
//     overflow, a directory handle that no longer resolves, a watch that could
//     not be added), it reports OpRescan of the smallest subtree it knows to be
//     affected, never nothing.
package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Op is the kind of a change.
type Op uint8

const (
	// OpCreate: a file, directory, symlink, hardlink or special file appeared.
	OpCreate Op = iota + 1
	// OpModify: file content was written or a written file was closed.
	OpModify
	// OpAttrib: mode, owner, times, xattrs or ACLs changed.
	OpAttrib
	// OpDelete: the entry at Path was removed.
	OpDelete
	// OpRename: the entry at From now lives at Path.
	OpRename
	// OpRescan: the state of Path, and of everything under it when it is a
	// directory, must be re-read from the filesystem (overflow, a lost or
	// failed watch, an ambiguous merged event).
	OpRescan
)

var opNames = [...]string{"?", "create", "modify", "attrib", "delete", "rename", "rescan"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Event is one change under the watched root.
type Event struct {
	Op Op
	// Path is relative to the watched root, '/'-separated; "" is the root.
	Path string
	// From is the old path of an OpRename, relative to the root.
	From string
	// Dir is true when the entry is a directory.
	Dir bool
	// Time is when the backend read the event from the kernel.
	Time time.Time
}

// Options configure Watch.
type Options struct {
	// Root is the directory to watch. Required.
	Root string
	// Exclude reports whether a path (relative, '/'-separated) must not be
	// reported. It is consulted for the path and for each of its ancestors
	// (as directories), so excluding a directory excludes its subtree. Use it
	// to drop the agent's own temporary files. Nil excludes nothing.
	Exclude func(rel string, isDir bool) bool
	// Logger receives warnings (overflow, watch limit). Nil means slog.Default.
	Logger *slog.Logger
	// ForceInotify skips fanotify.
	ForceInotify bool
	// RescanInterval is how often subtrees that inotify could not watch
	// (watch limit) are reported again as OpRescan. Zero means 30 s.
	RescanInterval time.Duration
	// MaxPending bounds the events buffered for a slow consumer; beyond it
	// the buffer is replaced by one OpRescan of the root. Zero means 1<<20.
	MaxPending int

	trace func(format string, args ...any) // tests: inotify decisions
}

// Watcher delivers batches of events until it is closed or its context ends.
type Watcher struct {
	backend string
	q       *queue
	stop    func() error
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
}

// ErrNotDir is returned by Watch when Root is not a directory.
var ErrNotDir = errors.New("capture: root is not a directory")

// Watch starts watching opts.Root: fanotify first, inotify when fanotify is
// unavailable (not root, unsupported filesystem, old kernel) or
// opts.ForceInotify is set. Changes made after Watch returns are reported.
//
// Returns ErrNotDir if Root is not a directory, or an error if neither
// backend can be set up.
func Watch(ctx context.Context, opts Options) (*Watcher, error) {
	if opts.Root == "" {
		return nil, errors.New("capture: Root is required")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("capture: resolve root: %w", err)
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("capture: stat root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s", ErrNotDir, root)
	}
	opts.Root = root
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RescanInterval <= 0 {
		opts.RescanInterval = 30 * time.Second
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1 << 20
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{q: newQueue(opts.MaxPending), cancel: cancel}
	f := newFilter(opts.Exclude)

	var run func(context.Context)
	if !opts.ForceInotify {
		fb, ferr := newFanotify(opts, f, w.q)
		if ferr == nil {
			w.backend, w.stop, run = "fanotify", fb.close, fb.run
		} else {
			opts.Logger.Info("capture: fanotify unavailable, using inotify", "root", root, "err", ferr)
		}
	}
	if run == nil {
		ib, ierr := newInotify(opts, f, w.q)
		if ierr != nil {
			cancel()
			return nil, fmt.Errorf("capture: inotify: %w", ierr)
		}
		ib.trace = opts.trace
		w.backend, w.stop, run = "inotify", ib.close, ib.run
	}
	w.wg.Add(2)
	go func() { defer w.wg.Done(); run(ctx) }()
	go func() { defer w.wg.Done(); w.q.deliver(ctx) }()
	go func() { <-ctx.Done(); w.shutdown() }()
	return w, nil
}

// Events returns the channel of event batches, in kernel order. It is closed
// after Close or when the context ends.
func (w *Watcher) Events() <-chan []Event { return w.q.out }

// Backend returns "fanotify" or "inotify".
func (w *Watcher) Backend() string { return w.backend }

// Close stops watching, releases kernel resources and closes Events. Batches
// not yet received are dropped. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.cancel()
	w.shutdown()
	w.wg.Wait()
	return w.stopErr
}

// shutdown closes the kernel fd once, which ends the backend's read loop.
func (w *Watcher) shutdown() {
	w.stopOnce.Do(func() {
		w.stopErr = w.stop()
		w.q.wake()
	})
}

// filter applies the caller's exclusions to a path and its ancestors.
type filter struct{ exclude func(string, bool) bool }

func newFilter(ex func(string, bool) bool) filter { return filter{ex} }

// excluded reports whether rel or one of its ancestors is excluded.
func (f filter) excluded(rel string, dir bool) bool {
	if f.exclude == nil || rel == "" {
		return false
	}
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && f.exclude(rel[:i], true) {
			return true
		}
	}
	return f.exclude(rel, dir)
}

// relTo returns abs relative to root, '/'-separated, and whether abs is root
// or lies under it.
func relTo(root, abs string) (string, bool) {
	if abs == root {
		return "", true
	}
	if root == "/" {
		if strings.HasPrefix(abs, "/") {
			return abs[1:], true
		}
		return "", false
	}
	if len(abs) > len(root) && abs[len(root)] == '/' && abs[:len(root)] == root {
		return abs[len(root)+1:], true
	}
	return "", false
}

// joinRel joins a relative directory and a name.
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
