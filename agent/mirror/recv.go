package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// Receiver is the target half of a mirror: it applies what the source sends
// over Conn (handshake and Attach done) beneath Job.Root. Every write goes
// through an fsys.Root, so nothing outside the root is ever created,
// written or deleted, whatever paths the peer sends.
type Receiver struct {
	Job  Job
	Conn *wire.Conn
	// DataDir holds the job's checkpoints ("" disables them: no resume of
	// partial files).
	DataDir string
	// Workers is the number of files written in parallel (default 4).
	Workers int
	Log     *slog.Logger

	root  *fsys.Root
	stats *statCache // the planner's
	epoch int        // the planner's: bumped when it removes a directory
	// created holds the directories the planner made in this run: nothing
	// is inside them but what the planner puts there, so their regular
	// files need no Lstat (the planner's; read by prefetch while the
	// planner waits for it).
	created map[string]bool
	// egid is the agent's effective group: the group of the temporaries
	// it creates until their metadata is applied.
	egid uint32
	// noUnnamed is set once the target's file system refused an unnamed
	// file (no O_TMPFILE): new files then get temporary names.
	noUnnamed atomic.Bool
	// prevClean: the job's previous run here completed, so no temporary
	// of it is left and, with orphans kept, the orphan walk can be skipped.
	prevClean bool
	ckpt      *checkpoints
	filter    *Filter
	// seen holds, by directory, the names the source listed in it (the
	// planner's; the orphan walk reads it after the planner ended). The
	// source sends a directory's children together and sorted, so a name
	// is an append to the current directory's list, not a map insert of
	// its whole path (which was 4% of a no-change run's CPU).
	seen     map[string]*seenNames
	seenDir  string
	seenLast *seenNames

	// Guarded by mu.
	mu      sync.Mutex
	plans   map[uint64]*plan
	needs   []wire.Need
	errs    []Skip
	sum     TargetSummary
	dirs    []fsys.Entry // directories, for their metadata at the end
	links   []wire.FileEntry
	skipped map[string]bool // source paths the source could not read
}

// seenNames are the names the source listed in one directory.
type seenNames struct {
	names  []string
	sorted bool // names checked (and if need be sorted) by the orphan walk
}

// markSeen records that the source has rel (the planner's).
func (r *Receiver) markSeen(rel string) {
	if rel == "" {
		return
	}
	dir, name := splitRel(rel)
	if r.seenLast == nil || dir != r.seenDir {
		l := r.seen[dir]
		if l == nil {
			l = &seenNames{}
			r.seen[dir] = l
		}
		r.seenLast, r.seenDir = l, dir
	}
	r.seenLast.names = append(r.seenLast.names, name)
}

// seenIn returns the names the source listed in dir, sorted. Called by
// the orphan walk (each directory by one worker) after planning ended.
func (r *Receiver) seenIn(dir string) []string {
	l := r.seen[dir]
	if l == nil {
		return nil
	}
	if !l.sorted {
		if !slices.IsSorted(l.names) {
			slices.Sort(l.names) // a sender that does not sort: still correct
		}
		l.sorted = true
	}
	return l.names
}

// plan is what the receiver decided for one regular file.
type plan struct {
	e      fsys.Entry
	action uint8
	// base: "" (none), "final" (the current file at e.Path), "partial"
	// (tmp of a checkpoint).
	base     string
	tmpRel   string
	validLen int64
	id       uint64
	// cur is the target object at plan time (for a metadata-only fix).
	cur fsys.Entry
	// srcHash is the source's content hash of a small file (strict mode):
	// the hash pool confirms an identical file locally.
	srcHash []byte
}

// errBadPath marks a path the peer must never send.
func badPath(rel string, err error) error {
	return fmt.Errorf("%w: %q: %w", wire.ErrBadPath, rel, err)
}

// Run performs the target half of the job and returns the target summary
// (also sent to the source in JobDone). Errors: wire.ErrBadPath for a path
// that is absolute, has "..", or is otherwise invalid; a transport or
// protocol error; ctx's cause. Per-object failures (e.g. a metadata call
// refused) do not stop the job: they are listed in TargetSummary.Errors.
func (r *Receiver) Run(ctx context.Context) (TargetSummary, error) {
	if err := Normalize(&r.Job.Opts); err != nil {
		return TargetSummary{}, err
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.Workers <= 0 {
		r.Workers = 4
	}
	root, err := fsys.OpenRoot(r.Job.Root)
	if err != nil {
		return TargetSummary{}, fmt.Errorf("open target root: %w", err)
	}
	defer root.Close()
	r.root = root
	rootEntry, err := root.Lstat("")
	if err != nil {
		return TargetSummary{}, fmt.Errorf("stat target root: %w", err)
	}
	r.filter = NewFilter(&r.Job.Opts, r.Job.Root, r.DataDir, rootEntry.Dev)
	r.filter.rootDev = 0 // mount boundaries are the source's business
	if r.ckpt, err = openCheckpoints(r.DataDir, r.Job.ID); err != nil {
		return TargetSummary{}, err
	}
	r.prevClean = r.ckpt.takeClean()
	r.egid = uint32(os.Getegid())
	r.noUnnamed.Store(!r.root.UnnamedWorks())
	r.plans = map[uint64]*plan{}
	r.created = map[string]bool{}
	r.seen = map[string]*seenNames{}
	r.skipped = map[string]bool{}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { r.Conn.Close() })
	defer stop()
	fail := func(err error) {
		if err != nil {
			cancel(err)
		}
	}

	var bg sync.WaitGroup
	bgCtx, bgStop := context.WithCancel(ctx)
	bg.Go(func() { r.flushLoop(bgCtx) })

	planQ := make(chan []wire.FileEntry, 8)
	var planner sync.WaitGroup
	planner.Go(func() { fail(r.planLoop(ctx, planQ)) })

	// The workers decode Data payloads (decompress, open), not the reader.
	r.Conn.DeferDataDecode()
	ap := newApplier(r, r.Workers, fail)
	var sendEnd *wire.SendEnd
	readErr := func() error {
		defer close(planQ)
		for {
			m, err := r.Conn.ReadMsg()
			if err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				return fmt.Errorf("read from source: %w", err)
			}
			switch m := m.(type) {
			case *wire.EntryBatch:
				select {
				case planQ <- m.Entries:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			case *wire.ScanEnd:
				// planQ is closed after SendEnd; the planner ends the
				// needs when it sees this marker.
				select {
				case planQ <- nil:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			case *wire.Data:
				if err := ap.data(ctx, m); err != nil {
					return err
				}
			case *wire.FileEnd:
				if err := ap.end(ctx, m); err != nil {
					return err
				}
			case *wire.SendEnd:
				sendEnd = m
				return nil
			case *wire.Error:
				return fmt.Errorf("source: %w", m.Err())
			default:
				return fmt.Errorf("%w: unexpected %s from source", wire.ErrProtocol, m.Kind())
			}
		}
	}()
	fail(readErr)
	if err := ap.close(); err != nil {
		fail(err)
	}
	planner.Wait()
	bgStop()
	bg.Wait()
	if ctx.Err() != nil {
		err := context.Cause(ctx)
		_ = r.Conn.Send(wire.ErrorMsg(err))
		return r.summary(), err
	}
	for _, p := range sendEnd.Skipped {
		r.skipped[p] = true
	}
	if err := r.finish(ctx); err != nil {
		_ = r.Conn.Send(wire.ErrorMsg(err))
		return r.summary(), err
	}
	sum := r.summary()
	b, _ := json.Marshal(sum)
	if err := r.Conn.Send(&wire.JobDone{Summary: b}); err != nil {
		return sum, fmt.Errorf("send job done: %w", err)
	}
	return sum, nil
}

func (r *Receiver) summary() TargetSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sum
	s.Errors = append([]Skip{}, r.errs...)
	return s
}

// objErr records a per-object failure.
func (r *Receiver) objErr(rel string, err error) {
	r.Log.Warn("target: cannot apply", "path", rel, "err", err)
	r.mu.Lock()
	r.errs = append(r.errs, Skip{Path: rel, Reason: err.Error()})
	r.mu.Unlock()
}

// pushNeed queues an answer for the source (sent by flushLoop).
func (r *Receiver) pushNeed(n wire.Need) {
	r.mu.Lock()
	r.needs = append(r.needs, n)
	full := len(r.needs) >= 1024
	r.mu.Unlock()
	if full {
		r.sendNeeds(false)
	}
}

// sendNeeds writes the queued answers (with End when last) and flushes.
func (r *Receiver) sendNeeds(end bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.needs) > 0 || end {
		n := min(len(r.needs), 1024)
		last := end && n == len(r.needs)
		if err := r.Conn.WriteMsg(&wire.NeedBatch{Items: r.needs[:n], End: last}); err != nil {
			return fmt.Errorf("send needs: %w", err)
		}
		r.needs = r.needs[n:]
		if last {
			break
		}
	}
	r.needs = nil
	return r.Conn.Flush()
}

// flushLoop sends queued answers every 2 ms.
func (r *Receiver) flushLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sendNeeds(false)
		}
	}
}

// isBadPath reports whether err means a path the peer must never send.
func isBadPath(err error) bool {
	return errors.Is(err, fsys.ErrEscapes) || errors.Is(err, fsys.ErrInvalidPath)
}
