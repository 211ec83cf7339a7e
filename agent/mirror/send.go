package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// Job names a tree on one agent's host and the options of a mirror.
type Job struct {
	ID   string
	Root string // absolute path on this host
	Opts Options
}

// Sender is the source half of a mirror: it scans Job.Root and streams what
// the target asks for over Conn, whose handshake and Attach are done.
type Sender struct {
	Job  Job
	Conn *wire.Conn
	// DataDir is the agent's data directory, excluded from the scan when it
	// lies under the root ("" for none).
	DataDir string
	// OnProgress, if set, is called about four times a second and once at
	// the end.
	OnProgress func(Progress)
	// Workers is the number of files read in parallel (default 4).
	Workers int
	Log     *slog.Logger

	// openHook, when set, runs before a file is opened for sending; an error
	// is treated as a read error (tests inject unreadable files with it).
	openHook func(rel string) error

	root *fsys.Root
	sc   *scanner
	c    counters

	// Guarded by mu.
	mu sync.Mutex
	// pending holds the regular files announced and not yet answered, by
	// id: pending[id-pendingBase] (nil for other entries and answered
	// files). IDs are dense and answered roughly in order, so a slice
	// trimmed at its front replaces a map (a map insert, lookup and delete
	// per file were 5% of a no-change scan's CPU).
	pending     []*fsys.Entry
	pendingBase uint64
}

// sendItem is one file the target asked for.
type sendItem struct {
	e    *fsys.Entry
	id   uint64
	need wire.Need
}

// Run performs the source half of the job. It returns the merged summary
// once the target has confirmed the end of the job. Errors: a scan or read
// failure under the stop policy (wrapping wire.ErrUnreadable), the target's
// error (a *wire.RemoteError), a transport error, or ctx's cause.
func (s *Sender) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	if err := Normalize(&s.Job.Opts); err != nil {
		return Summary{}, err
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Workers <= 0 {
		s.Workers = 4
	}
	root, err := fsys.OpenRoot(s.Job.Root)
	if err != nil {
		return Summary{}, fmt.Errorf("open source root: %w", err)
	}
	defer root.Close()
	s.root = root
	rootEntry, err := root.Lstat("")
	if err != nil {
		return Summary{}, fmt.Errorf("stat source root: %w", err)
	}
	s.pending, s.pendingBase = nil, 1
	filter := NewFilter(&s.Job.Opts, s.Job.Root, s.DataDir, rootEntry.Dev)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { s.Conn.Close() })
	defer stop()

	var wg sync.WaitGroup
	fail := func(err error) {
		if err != nil {
			cancel(err)
		}
	}

	// Flusher and progress reporter.
	wg.Go(func() { s.background(ctx) })

	// Scanner → batcher → EntryBatch messages.
	entries := make(chan []fsys.Entry, 16)
	sc := &scanner{root: root, filter: filter, workers: 4, onErr: s.scanError,
		hashSmall: s.Job.Opts.Checksum == wire.ChecksumStrict}
	s.sc = sc
	wg.Go(func() {
		defer close(entries)
		fail(sc.run(ctx, entries))
	})
	wg.Go(func() { fail(s.announce(ctx, entries)) })

	// Target answers → send queue → workers.
	work := newQueue[sendItem]()
	done := make(chan *wire.JobDone, 1)
	wg.Go(func() {
		defer work.Close()
		jd, err := s.readAnswers(ctx, work)
		if err != nil {
			fail(err)
			return
		}
		done <- jd
	})
	var workers sync.WaitGroup
	for range s.Workers {
		workers.Go(func() {
			buf := make([]byte, frameSize)
			subs := &subRoots{root: root}
			defer subs.closeAll()
			for {
				it, ok := work.Pop()
				if !ok {
					return
				}
				if err := s.sendFile(ctx, it, buf, subs); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	// The answers reader closes work when the target sent its last
	// NeedBatch; once the workers drained it, everything has been sent.
	workers.Wait()
	var jd *wire.JobDone
	if ctx.Err() == nil {
		s.c.mu.Lock()
		var skipped []string
		for _, sk := range s.c.skipped {
			skipped = append(skipped, sk.Path)
		}
		s.c.mu.Unlock()
		if err := s.Conn.Send(&wire.SendEnd{Skipped: skipped}); err != nil {
			fail(fmt.Errorf("send end: %w", err))
		}
		select {
		case jd = <-done:
		case <-ctx.Done():
		}
	}
	cancel(errJobFinished)
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, errJobFinished) {
		if s.OnProgress != nil {
			// The exact counters of a failed run (resume accounting).
			s.OnProgress(s.c.progress(s.Conn.BytesWritten()))
		}
		return Summary{}, err
	}
	sum := s.summary(start)
	if jd != nil && len(jd.Summary) > 0 {
		if err := json.Unmarshal(jd.Summary, &sum.Target); err != nil {
			return sum, fmt.Errorf("%w: target summary: %v", wire.ErrProtocol, err)
		}
		sum.Skipped = append(sum.Skipped, sum.Target.Errors...)
	}
	if s.OnProgress != nil {
		s.OnProgress(s.c.progress(s.Conn.BytesWritten()))
	}
	return sum, nil
}

// errJobFinished is the cancel cause of a job that ended normally.
var errJobFinished = errors.New("job finished")

func (s *Sender) summary(start time.Time) Summary {
	s.c.mu.Lock()
	skipped := append([]Skip(nil), s.c.skipped...)
	s.c.mu.Unlock()
	return Summary{
		JobID: s.Job.ID, Files: s.c.filesTotal.Load(), Bytes: s.c.bytesTotal.Load(),
		Dirs: s.c.dirs.Load(), Symlinks: s.c.symlinks.Load(), Specials: s.c.specials.Load(),
		Hardlinks: s.c.hardlinks.Load(), FilesSent: s.c.filesSent.Load(), BytesSent: s.c.bytesSent.Load(),
		FilesUpToDate: s.c.upToDate.Load(), DeltaFiles: s.c.delta.Load(),
		ResumedFiles: s.c.resumedFiles.Load(), ResumedBytes: s.c.resumedBytes.Load(),
		BytesOnWire: s.Conn.BytesWritten(), BytesFromPeer: s.Conn.BytesRead(),
		Skipped: skipped, DurationMs: time.Since(start).Milliseconds(),
	}
}

// background flushes the connection every 2 ms (so batches and small files
// never wait for a full buffer) and reports progress.
func (s *Sender) background(ctx context.Context) {
	flush := time.NewTicker(2 * time.Millisecond)
	defer flush.Stop()
	report := time.NewTicker(250 * time.Millisecond)
	defer report.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			s.Conn.Flush()
		case <-report.C:
			if s.OnProgress != nil {
				s.OnProgress(s.c.progress(s.Conn.BytesWritten()))
			}
		}
	}
}

// scanError applies the error policy to an unreadable object met by the
// scanner.
func (s *Sender) scanError(rel string, err error) error {
	if s.Job.Opts.OnError == wire.OnErrorSkip {
		s.Log.Warn("skipping unreadable object", "path", rel, "err", err)
		s.c.skip(rel, err.Error())
		return nil
	}
	return fmt.Errorf("%w: %s: %w", wire.ErrUnreadable, rel, err)
}

// announce turns scanned entries into EntryBatch messages: it assigns IDs,
// detects hardlinks and remembers regular files until the target answers.
func (s *Sender) announce(ctx context.Context, in <-chan []fsys.Entry) error {
	type devIno struct{ dev, ino uint64 }
	links := map[devIno]string{}
	var next uint64
	batch := &wire.EntryBatch{}
	// ptrs are the pending slots of the batch's entries (ids next-len+1 ..
	// next), published before the batch is sent: an answer can only
	// follow the batch.
	var ptrs []*fsys.Entry
	flush := func() error {
		if len(batch.Entries) == 0 {
			return nil
		}
		s.mu.Lock()
		s.pending = append(s.pending, ptrs...)
		s.mu.Unlock()
		clear(ptrs)
		ptrs = ptrs[:0]
		err := s.Conn.WriteMsg(batch)
		batch.Entries = batch.Entries[:0]
		if err != nil {
			return fmt.Errorf("send file list: %w", err)
		}
		return nil
	}
	for entries := range in {
		for i := range entries {
			e := &entries[i]
			next++
			fe := wire.FileEntry{ID: next, Entry: *e}
			var slot *fsys.Entry
			switch e.Type {
			case fsys.TypeFile:
				if e.Nlink > 1 {
					k := devIno{e.Dev, e.Ino}
					if first, ok := links[k]; ok {
						fe.LinkTo = first
						s.c.hardlinks.Add(1)
						break
					}
					links[k] = e.Path
				}
				s.c.filesTotal.Add(1)
				s.c.bytesTotal.Add(e.Size)
				if h, ok := s.sc.hashes.LoadAndDelete(e.Path); ok {
					fe.Hash = h.([]byte)
				}
				slot = e
			case fsys.TypeDir:
				s.c.dirs.Add(1)
			case fsys.TypeSymlink:
				s.c.symlinks.Add(1)
			default:
				s.c.specials.Add(1)
			}
			batch.Entries = append(batch.Entries, fe)
			ptrs = append(ptrs, slot)
			if len(batch.Entries) == 1024 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	s.c.scanDone.Store(true)
	if err := s.Conn.WriteMsg(&wire.ScanEnd{}); err != nil {
		return fmt.Errorf("send scan end: %w", err)
	}
	return nil
}

// takePending returns and forgets the pending file of id (nil if there is
// none: an unknown or already answered id).
func (s *Sender) takePending(id uint64) *fsys.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < s.pendingBase || id-s.pendingBase >= uint64(len(s.pending)) {
		return nil
	}
	i := id - s.pendingBase
	e := s.pending[i]
	s.pending[i] = nil
	for len(s.pending) > 0 && s.pending[0] == nil {
		s.pending = s.pending[1:]
		s.pendingBase++
	}
	return e
}

// readAnswers reads the target's messages until JobDone: NeedBatch items go
// to work (closed after the last batch).
func (s *Sender) readAnswers(ctx context.Context, work *queue[sendItem]) (*wire.JobDone, error) {
	for {
		m, err := s.Conn.ReadMsg()
		if err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, fmt.Errorf("read from target: %w", err)
		}
		switch m := m.(type) {
		case *wire.NeedBatch:
			for _, n := range m.Items {
				e := s.takePending(n.ID)
				if e == nil {
					return nil, fmt.Errorf("%w: target answered unknown file id %d", wire.ErrProtocol, n.ID)
				}
				if n.Action == wire.NeedSkip {
					s.c.upToDate.Add(1)
					s.c.filesDone.Add(1)
					s.c.bytesDone.Add(e.Size)
					continue
				}
				work.Push(sendItem{e: e, id: n.ID, need: n})
			}
			if m.End {
				work.Close()
			}
		case *wire.JobDone:
			return m, nil
		case *wire.Error:
			return nil, fmt.Errorf("target: %w", m.Err())
		default:
			return nil, fmt.Errorf("%w: unexpected %s from target", wire.ErrProtocol, m.Kind())
		}
	}
}
