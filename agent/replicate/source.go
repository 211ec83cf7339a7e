package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-migrate/ferry/agent/bwlimit"
	"github.com/ferry-migrate/ferry/agent/capture"
	"github.com/ferry-migrate/ferry/agent/journal"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// States of a sync, as the API names them.
const (
	StateStarting         = "starting"
	StateMirroring        = "mirroring"
	StateSyncing          = "syncing"
	StatePaused           = "paused"
	StateRemirrorRequired = "remirror_required"
	StateStopped          = "stopped"
)

// SourceConfig configures StartSource.
type SourceConfig struct {
	JobID string
	// Root is the absolute source root.
	Root string
	// DataDir is the agent's data directory: the journal lives in
	// StateDir(DataDir, JobID)/journal, and the directory is excluded from
	// capture when it lies under Root.
	DataDir string
	// Opts are the job's mirror options (excludes, profile, checksum mode
	// of resyncs, BWLimit for shipping).
	Opts wire.JobOptions
	// Dial opens a connection (TLS and hello done) to the target agent.
	Dial func(ctx context.Context) (*wire.Conn, error)
	// TargetRoot is the absolute root on the target host.
	TargetRoot string
	// Mirror mirrors Root/sub onto TargetRoot/sub with orphans deleted
	// (sub "" is the whole tree). It is called for the initial mirror, for
	// resyncs (restart, journal full) and for rescans of a subtree;
	// shipping is paused while it runs. Its summary's BytesOnWire is
	// counted in Stats.MirrorBytes. Required.
	Mirror func(ctx context.Context, sub string) (mirror.Summary, error)
	// MirrorStrict is Mirror in strict checksum mode. After a resync (a
	// restart included) it compares the directories of files whose appends
	// were shipped on a sampled check not yet proven (see sweep.go); nil
	// ships those files again in full instead.
	MirrorStrict func(ctx context.Context, sub string) (mirror.Summary, error)
	// JournalMaxBytes bounds the journal on disk (0: 1 GiB).
	JournalMaxBytes int64
	// ForceInotify skips fanotify (tests).
	ForceInotify bool
	Log          *slog.Logger
}

// Stats describe a running sync.
type Stats struct {
	State string
	// Lag is the age of the oldest change not yet applied on the target.
	Lag            time.Duration
	BacklogRecords int64
	BacklogBytes   int64
	// AppliedTotal counts records acknowledged since StartSource.
	AppliedTotal int64
	// AppliedRate is records a second over the last few seconds.
	AppliedRate float64
	// Backend is the capture backend ("fanotify" or "inotify").
	Backend string
	// Mirrors counts mirrors run by this Source (the initial one, resyncs
	// after a recovery or an overflow; not the rescans of a subtree).
	Mirrors int64
	// ContentBytes counts file content bytes shipped by the sync (not by
	// its mirrors); ContentWireBytes the same after the payload codec
	// (compression, sealing), as they crossed the connection.
	ContentBytes     int64
	ContentWireBytes int64
	// Reconnects counts shipping sessions that ended in an error (a cut
	// connection, a killed target, an op the target refused).
	Reconnects int64
	// MirrorBytes counts the bytes the mirrors run by this Source (resyncs,
	// rescans) wrote to their data connections.
	MirrorBytes int64
	// VerifyReadBytes counts the bytes the source read again to prove the
	// target's copies of files shipped by sampled appends (sweep.go).
	VerifyReadBytes int64
	// Err is the last error (connection, mirror), cleared on success.
	Err string
}

// Source is the source side of a sync: capture → journal → shipper.
type Source struct {
	cfg     SourceConfig
	log     *slog.Logger
	j       *journal.Journal
	w       *capture.Watcher
	cancel  context.CancelFunc
	done    chan struct{}
	backend string
	filter  *mirror.Filter
	// unverified lists files appended to on a sampled check (sweep.go).
	unverified *unverifiedSet
	// injected is the last record the shipper journaled itself (a file to
	// ship again after a sweep found it changed).
	injected atomic.Uint64
	// unproven counts the shipper's files whose sweep is running.
	unproven atomic.Int64
	// wireBytes counts the encoded content of ended sessions; cur is the
	// session's connection.
	wireBytes atomic.Int64
	cur       atomic.Pointer[wire.Conn]

	// recovered is set when a connection failed (not an op the target
	// refused) since the last mirror.
	recovered atomic.Bool
	resyncs   atomic.Int64
	// contentBytes counts file content shipped (before TLS).
	contentBytes atomic.Int64
	mirrorBytes  atomic.Int64
	reconnects   atomic.Int64
	sweptBytes   atomic.Int64
	// remirror is signalled by the feeder when the journal overflowed.
	remirror chan struct{}

	mu        sync.Mutex // guards the fields below
	state     string
	paused    bool
	pauseCh   chan struct{} // closed and replaced on Resume
	lastErr   string
	applied   int64
	lastEvent time.Time
	rate      rateMeter
	err       error // terminal error of run
	// lim paces shipping (unlimited without a schedule); SetSchedule on it
	// changes a running sync's bandwidth.
	lim *bwlimit.Limiter
	// barriers are the drain barriers WaitDrained waits for, by name.
	barriers map[string]chan uint64
}

// StartSource opens the journal, starts change capture and then, in the
// background, mirrors the tree (capture runs first, so nothing changed
// during the mirror is missed) and ships the journal to the target. A
// (re)start always resyncs with Mirror first, since changes made while no
// capture ran are unknown; records already journaled are then shipped from
// the last acknowledged one.
//
// Returns an error if the journal cannot be opened or capture cannot start.
func StartSource(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.Mirror == nil || cfg.Dial == nil {
		return nil, errors.New("replicate: Mirror and Dial are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	cfg.Root = root
	if err := mirror.Normalize(&cfg.Opts); err != nil {
		return nil, err
	}
	dir := filepath.Join(StateDir(cfg.DataDir, cfg.JobID), "journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	unv, err := openUnverified(filepath.Join(StateDir(cfg.DataDir, cfg.JobID), "unverified"))
	if err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	j, err := journal.Open(dir, journal.Options{MaxBytes: cfg.JournalMaxBytes, Logger: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("replicate: open journal: %w", err)
	}
	var sched *bwlimit.Schedule
	if b := strings.TrimSpace(cfg.Opts.BWLimit); b != "" && b != "off" {
		if sched, err = bwlimit.ParseSchedule(b); err != nil {
			return nil, fmt.Errorf("replicate: bwlimit: %w", err)
		}
	}
	filter := mirror.NewFilter(&cfg.Opts, root, cfg.DataDir, 0)
	ctx, cancel := context.WithCancel(ctx)
	w, err := capture.Watch(ctx, capture.Options{Root: root, Logger: cfg.Log, ForceInotify: cfg.ForceInotify,
		Exclude: func(rel string, _ bool) bool { return !isBarrier(rel) && filter.ExcludedName(rel) }})
	if err != nil {
		cancel()
		j.Close()
		return nil, fmt.Errorf("replicate: capture: %w", err)
	}
	s := &Source{cfg: cfg, log: cfg.Log.With("job", cfg.JobID, "role", "sync-source"), j: j, w: w,
		cancel: cancel, done: make(chan struct{}), backend: w.Backend(),
		remirror: make(chan struct{}, 1), state: StateStarting, barriers: map[string]chan uint64{},
		lim: bwlimit.NewLimiter(sched, nil), pauseCh: make(chan struct{}), filter: filter, unverified: unv}
	go s.feed(ctx)
	go s.run(ctx)
	return s, nil
}

// Limiter returns the limiter that paces shipping (the job's BWLimit
// schedule, unlimited without one): its SetSchedule changes the bandwidth
// of the running sync at once. Mirrors run by Config.Mirror have their own.
func (s *Source) Limiter() *bwlimit.Limiter { return s.lim }

// excluded reports whether rel is left out of the sync.
func (s *Source) excluded(rel string) bool { return s.filter.ExcludedName(rel) }

// Stats returns the current state and counters.
func (s *Source) Stats() Stats {
	js := s.j.Stats()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{State: s.state, Lag: js.Lag, BacklogRecords: int64(js.BacklogRecords), BacklogBytes: js.BacklogBytes,
		AppliedTotal: s.applied, AppliedRate: s.rate.rate(time.Now()), Backend: s.backend, Err: s.lastErr,
		Mirrors: s.resyncs.Load(), ContentBytes: s.contentBytes.Load(), ContentWireBytes: s.contentWire(),
		MirrorBytes: s.mirrorBytes.Load(), Reconnects: s.reconnects.Load(), VerifyReadBytes: s.sweptBytes.Load()}
	if s.paused && st.State == StateSyncing {
		st.State = StatePaused
	}
	return st
}

// Pause stops shipping (capture and journaling go on); Resume restarts it.
func (s *Source) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

// Resume restarts shipping after Pause.
func (s *Source) Resume() {
	s.mu.Lock()
	if s.paused {
		s.paused = false
		close(s.pauseCh)
		s.pauseCh = make(chan struct{})
	}
	s.mu.Unlock()
}

// waitUnpaused blocks while shipping is paused.
func (s *Source) waitUnpaused(ctx context.Context) error {
	for {
		s.mu.Lock()
		p, ch := s.paused, s.pauseCh
		s.mu.Unlock()
		if !p {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitDrained returns once the initial mirror is done and every change
// made on the source before the call is applied and acknowledged by the
// target — the final sync of a cutover, after the source services are
// stopped. It places a drain barrier in the source root (see barrier.go),
// waits until capture delivers it (so every earlier event is journaled),
// then until the journal's last record at that point is acknowledged.
// When no barrier can be placed (read-only root) it falls back to
// waiting for capture to be quiet for QuietPeriod. Returns ctx's error, or
// the sync's terminal error.
func (s *Source) WaitDrained(ctx context.Context) error {
	if err := s.waitSyncing(ctx); err != nil {
		return err
	}
	var upto uint64
	quietFallback := false
	for {
		seq, err := s.barrier(ctx)
		if err == nil {
			upto = seq
			break
		}
		if errors.Is(err, errBarrierLost) {
			s.log.Warn("sync drain barrier not delivered by capture, placing another")
			continue
		}
		if errors.Is(err, errNoBarrier) {
			s.log.Warn("sync drain without a barrier: waiting for capture to be quiet", "err", err)
			quietFallback = true
			break
		}
		return s.stoppedErr(err)
	}
	start := time.Now()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		js := s.j.Stats()
		s.mu.Lock()
		state, last := s.state, s.lastEvent
		s.mu.Unlock()
		now := time.Now()
		if quietFallback {
			upto = js.Last
			if now.Sub(start) < QuietPeriod || now.Sub(last) < QuietPeriod {
				upto = js.Last + 1
			}
		}
		// Files appended to on a sampled check are proven (or shipped
		// again) by their sweeps first, and what those journaled applied.
		if state == StateSyncing && js.Acked >= upto && js.Durable >= upto && s.unproven.Load() == 0 &&
			js.Acked >= s.injected.Load() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return s.stoppedErr(nil)
		case <-t.C:
		}
	}
}

// QuietPeriod is how long WaitDrained wants capture to have been silent
// when it cannot place a barrier.
const QuietPeriod = 150 * time.Millisecond

// waitSyncing waits until the initial mirror is done.
func (s *Source) waitSyncing(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		state := s.state
		s.mu.Unlock()
		if state == StateSyncing || state == StatePaused {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return s.stoppedErr(nil)
		case <-t.C:
		}
	}
}

// stoppedErr returns the sync's terminal error once it has stopped, err
// (or a generic error) otherwise.
func (s *Source) stoppedErr(err error) error {
	select {
	case <-s.done:
		s.mu.Lock()
		err = s.err
		s.mu.Unlock()
		if err == nil {
			err = errors.New("replicate: sync stopped")
		}
	default:
	}
	return err
}

// Stop stops capture and shipping and closes the journal (what was
// journaled survives for the next StartSource). It returns the sync's
// terminal error, if any.
func (s *Source) Stop() error {
	s.cancel()
	<-s.done
	s.w.Close()
	s.j.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = StateStopped
	if errors.Is(s.err, context.Canceled) {
		return nil
	}
	return s.err
}

// Done is closed when the sync has ended (Stop, ctx, or a terminal error).
func (s *Source) Done() <-chan struct{} { return s.done }

func (s *Source) setState(st string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

func (s *Source) setErr(err error) {
	s.mu.Lock()
	if err == nil {
		s.lastErr = ""
	} else {
		s.lastErr = err.Error()
	}
	s.mu.Unlock()
}

// acked records n more records acknowledged.
func (s *Source) acked(n int64) {
	s.mu.Lock()
	s.applied += n
	s.rate.add(time.Now(), n)
	s.mu.Unlock()
}

// rateMeter counts events per second over a sliding window of seconds.
type rateMeter struct {
	slots [5]int64
	secs  [5]int64
}

func (r *rateMeter) add(now time.Time, n int64) {
	sec := now.Unix()
	i := sec % int64(len(r.slots))
	if r.secs[i] != sec {
		r.secs[i], r.slots[i] = sec, 0
	}
	r.slots[i] += n
}

// rate averages the complete seconds of the window.
func (r *rateMeter) rate(now time.Time) float64 {
	sec := now.Unix()
	var sum int64
	for i := range r.slots {
		if r.secs[i] < sec && r.secs[i] >= sec-int64(len(r.slots)-1) {
			sum += r.slots[i]
		}
	}
	return float64(sum) / float64(len(r.slots)-1)
}

// mirror runs cfg.Mirror on sub and counts the bytes it sent.
func (s *Source) mirror(ctx context.Context, sub string) error {
	sum, err := s.cfg.Mirror(ctx, sub)
	s.mirrorBytes.Add(sum.BytesOnWire)
	return err
}

// contentWire is the encoded content shipped so far, the running session's
// included.
func (s *Source) contentWire() int64 {
	n := s.wireBytes.Load()
	if c := s.cur.Load(); c != nil {
		_, enc := c.PayloadBytes()
		n += enc
	}
	return n
}
