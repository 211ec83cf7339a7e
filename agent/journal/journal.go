// Package journal is the source agent's durable, ordered change journal for
// continuous sync.
//
// Captured changes are appended as records with consecutive sequence numbers
// to segment files. Appends are made durable by a background group commit:
// one fdatasync covers every record written since the previous one, so many
// appends share the cost of a flush. Read returns durable records only;
// ReadWritten also returns records written but not yet flushed, which
// survive kill -9 of the process but not a power loss: a reader that hands
// those on tells a lost number from a reused one through Opened (see
// ahead.go). Acknowledgements are accepted for durable records only; they
// are persisted and whole segments below them are deleted. The journal is bounded: an Append that would
// grow it past MaxBytes fails with ErrFull, and the caller must remirror and
// then Reset.
//
// Durability contract: once Wait reports a sequence number (or Sync returns
// nil), that record and every earlier one survive kill -9 and power loss.
// Recovery on Open keeps the longest valid prefix of records: a torn tail
// (a partly written batch) is truncated, never anything durable.
package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configure Open.
type Options struct {
	// MaxBytes bounds the segment files on disk. Zero means 1 GiB.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts. Zero means
	// 16 MiB (capped to MaxBytes/4 so acknowledged space can be reclaimed).
	SegmentBytes int64
	// SyncInterval is how long the group commit waits after the first
	// unsynced append to gather more before it flushes; it caps the flush
	// rate at one per interval. Zero means 2 ms. Negative flushes as soon
	// as the previous flush is done (appends arriving during a flush still
	// share the next one): lowest latency, most flushes.
	SyncInterval time.Duration
	// Logger receives recovery notices. Nil means slog.Default.
	Logger *slog.Logger
}

// Stats describe the backlog: records appended but not yet acknowledged.
type Stats struct {
	Last, Acked, Durable uint64
	// BacklogRecords is Last - Acked.
	BacklogRecords uint64
	// BacklogBytes is the Size hints plus encoded size of unacked records.
	BacklogBytes int64
	// Oldest is the capture time of the oldest unacked record (zero when
	// the backlog is empty); Lag is its age.
	Oldest time.Time
	Lag    time.Duration
	// DiskBytes is the size of the segment files.
	DiskBytes int64
}

var (
	// ErrFull is returned by Append when the records would grow the journal
	// past MaxBytes. Nothing of the batch is written. The caller must stop
	// relying on the journal (remirror) and call Reset.
	ErrFull = errors.New("journal: full")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("journal: closed")
	// ErrGone is returned by Read for records already dropped (below the
	// acknowledged point or before a Reset).
	ErrGone = errors.New("journal: records no longer available")
	// ErrAckBeyondDurable is returned by Ack for a sequence number that was
	// never durable (and so never readable).
	ErrAckBeyondDurable = errors.New("journal: ack beyond durable records")
)

// Journal is safe for concurrent use.
type Journal struct {
	dir          string
	maxBytes     int64
	segmentBytes int64
	interval     time.Duration
	log          *slog.Logger

	// segMu is held for reading while a reader uses segment files, and for
	// writing while files are closed or removed (Ack, Reset, Close).
	segMu sync.RWMutex
	// syncMu is held by the group commit while it flushes files, so files
	// are not closed under it.
	syncMu sync.Mutex
	// metaMu serialises writes of the meta file.
	metaMu sync.Mutex

	mu sync.Mutex // guards the fields below
	// segs are the live segments by first seq; the last one is active.
	segs []*segment
	// unsynced are rotated segments not yet flushed.
	unsynced []*segment
	dirDirty bool
	next     uint64 // seq of the next record
	written  uint64 // last seq written to a file
	durable  uint64 // last seq flushed
	acked    uint64
	// floor is the first seq after the last Reset: segments wholly below it
	// are leftovers of that Reset.
	floor  uint64
	cum    int64 // backlog byte total through the last record
	disk   int64 // sum of segment sizes
	err    error // sticky write or flush failure
	closed bool
	// durableCh is closed (and replaced) whenever durable advances.
	durableCh chan struct{}
	// writtenCh is closed (and replaced) whenever written advances.
	writtenCh chan struct{}
	// epoch identifies this opening of the journal; openLast is the last
	// sequence number recovered when it was opened (see Opened).
	epoch, openLast uint64
	kick            chan bool // true: flush now, skipping SyncInterval
	stopped         chan struct{}
}

// Open opens or creates the journal in dir, recovering it after a crash:
// the longest valid run of records is kept and anything after a torn or
// corrupt record is removed. Sequence numbers continue after the highest
// ever assigned, even if those records were acknowledged and dropped.
//
// Returns an error if dir cannot be created or read, or the meta file is
// corrupt.
func Open(dir string, opts Options) (*Journal, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 16 << 20
	}
	opts.SegmentBytes = min(opts.SegmentBytes, max(opts.MaxBytes/4, 4096))
	switch {
	case opts.SyncInterval == 0:
		opts.SyncInterval = 2 * time.Millisecond
	case opts.SyncInterval < 0:
		opts.SyncInterval = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		// Make the new directory's own entry durable.
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, err
		}
	}
	j := &Journal{
		dir: dir, maxBytes: opts.MaxBytes, segmentBytes: opts.SegmentBytes,
		interval: opts.SyncInterval, log: opts.Logger,
		durableCh: make(chan struct{}), writtenCh: make(chan struct{}), kick: make(chan bool, 1), stopped: make(chan struct{}),
		epoch: rand.Uint64() | 1,
	}
	if err := j.recover(); err != nil {
		j.closeFiles()
		return nil, err
	}
	j.openLast = j.next - 1
	go j.syncLoop()
	return j, nil
}

// Append assigns the next sequence numbers to recs (in place), writes them
// and returns the last one. They become durable at the next group commit
// (see Wait and Sync). Records with a zero Time get the current time.
//
// Returns ErrFull, writing nothing, if the journal would exceed MaxBytes;
// ErrClosed after Close; or the sticky error of an earlier failed write or
// flush.
func (j *Journal) Append(recs ...Record) (uint64, error) {
	if len(recs) == 0 {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.next - 1, j.err
	}
	now := time.Now().UnixNano()
	for i := range recs {
		if err := validate(&recs[i]); err != nil {
			return 0, err
		}
		if recs[i].Time == 0 {
			recs[i].Time = now
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return 0, ErrClosed
	}
	if j.err != nil {
		return 0, j.err
	}
	var n int64
	for i := range recs {
		n += int64(encodedLen(&recs[i]))
	}
	if j.disk+n > j.maxBytes {
		return 0, ErrFull
	}
	active := j.segs[len(j.segs)-1]
	if active.size > 0 && active.size+n > j.segmentBytes {
		seg, err := createSegment(j.dir, j.next)
		if err != nil {
			return 0, err
		}
		j.unsynced = append(j.unsynced, active)
		j.segs = append(j.segs, seg)
		j.dirDirty = true
		active = seg
	}
	buf := make([]byte, 0, n)
	cum := j.cum
	off := active.size
	for i := range recs {
		recs[i].Seq = j.next + uint64(i)
		active.note(recs[i].Seq, off+int64(len(buf)))
		buf = appendRecord(buf, &recs[i], cum)
		cum += weight(&recs[i])
	}
	if _, err := active.f.WriteAt(buf, off); err != nil {
		// Drop whatever part was written so the file ends at a whole record.
		if terr := active.f.Truncate(off); terr != nil {
			j.err = fmt.Errorf("journal: write failed (%v) and truncate failed: %w", err, terr)
		}
		active.index = trimIndex(active.index, j.next)
		return 0, fmt.Errorf("journal: write: %w", err)
	}
	j.next += uint64(len(recs))
	active.last = j.next - 1
	active.size += n
	j.disk += n
	j.cum = cum
	j.written = j.next - 1
	close(j.writtenCh)
	j.writtenCh = make(chan struct{})
	j.poke(false)
	return j.written, nil
}

func trimIndex(idx []indexEntry, from uint64) []indexEntry {
	for len(idx) > 0 && idx[len(idx)-1].seq >= from {
		idx = idx[:len(idx)-1]
	}
	return idx
}

func (j *Journal) poke(now bool) {
	select {
	case j.kick <- now:
	default:
		if now { // replace a pending "gather" kick with "now"
			select {
			case <-j.kick:
			default:
			}
			select {
			case j.kick <- true:
			default:
			}
		}
	}
}

// Sync flushes every record appended so far and returns once they are
// durable. Returns ErrClosed after Close or the flush error.
func (j *Journal) Sync() error {
	j.mu.Lock()
	target := j.written
	j.mu.Unlock()
	j.poke(true)
	return j.waitDurable(context.Background(), target)
}

// Wait blocks until a record with a sequence number above afterSeq is
// durable. Returns ctx's error, ErrClosed, or a flush error.
func (j *Journal) Wait(ctx context.Context, afterSeq uint64) error {
	return j.waitDurable(ctx, afterSeq+1)
}

// waitDurable waits until durable >= seq.
func (j *Journal) waitDurable(ctx context.Context, seq uint64) error {
	return j.waitFor(ctx, seq, func() (uint64, chan struct{}) { return j.durable, j.durableCh })
}

// waitFor waits until the mark mark returns (durable or written, with the
// channel closed when it advances; called with mu held) reaches seq.
func (j *Journal) waitFor(ctx context.Context, seq uint64, mark func() (uint64, chan struct{})) error {
	for {
		j.mu.Lock()
		at, ch := mark()
		err, closed := j.err, j.closed
		j.mu.Unlock()
		switch {
		case at >= seq:
			return nil
		case err != nil:
			return err
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Last returns the sequence number of the last appended record (0 if none
// was ever appended).
func (j *Journal) Last() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next - 1
}

// Durable returns the sequence number of the last durable record.
func (j *Journal) Durable() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.durable
}

// Acked returns the last acknowledged sequence number.
func (j *Journal) Acked() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.acked
}

// Close flushes what was appended, stops the group commit and closes the
// files. Later calls return ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	j.mu.Unlock()
	serr := j.Sync()
	j.mu.Lock()
	j.closed = true
	close(j.durableCh)
	j.durableCh = make(chan struct{})
	close(j.writtenCh)
	j.writtenCh = make(chan struct{})
	j.mu.Unlock()
	j.poke(true)
	<-j.stopped
	j.segMu.Lock()
	defer j.segMu.Unlock()
	if err := j.closeFiles(); err != nil && serr == nil {
		serr = err
	}
	return serr
}

func (j *Journal) closeFiles() error {
	var first error
	for _, s := range j.segs {
		if s.f != nil {
			if err := s.f.Close(); err != nil && first == nil {
				first = err
			}
			s.f = nil
		}
	}
	return first
}
