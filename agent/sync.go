package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// syncSource runs the source half of a continuous sync (package replicate)
// for a controller: it reports SyncStatus about once a second until the
// controller closes the connection or sends Cancel, and obeys SyncControl.
func (a *Agent) syncSource(ctx context.Context, c *wire.Conn, m *wire.SyncStart, log *slog.Logger) {
	log = log.With("job", m.JobID, "role", "sync-source")
	fail := func(err error) {
		log.Warn("sync failed", "err", err)
		c.Send(wire.ErrorMsg(err))
	}
	opts := a.opts(m.Opts)
	if err := mirror.Normalize(&opts); err != nil {
		fail(err)
		return
	}
	if _, err := parsePayload(opts); err != nil {
		fail(err)
		return
	}
	if err := checkRoot(m.Root, false); err != nil {
		fail(err)
		return
	}
	id := "sync:" + m.JobID
	if !a.claim(id) {
		fail(fmt.Errorf("%w: %s", wire.ErrBusy, id))
		return
	}
	defer a.release(id)
	self := m.Self
	if self == "" {
		self = a.Addr().String()
	}
	ctl := &Controller{TLS: a.cfg.ClientTLS}
	mirrorIn := func(checksum string) func(ctx context.Context, sub string) (mirror.Summary, error) {
		return func(ctx context.Context, sub string) (mirror.Summary, error) {
			from := Endpoint{Addr: self, Path: path.Join(m.Root, sub)}
			to := Endpoint{Addr: m.Target, Path: path.Join(m.TargetRoot, sub)}
			o := opts
			o.Orphans, o.OrphanDir, o.Checksum = wire.OrphansDelete, "", checksum
			if sub != "" {
				o.Profile = "" // the profile's exclusions are relative to the job root
			}
			return ctl.Mirror(ctx, MirrorRequest{From: from, To: to, Opts: o}, nil)
		}
	}
	// Resyncs and rescans compare in time mode: the target was written by
	// this job (temporary files renamed over, times set last), and strict
	// mode would read and hash the whole tree on both hosts on every
	// restart of the session. Files appended to on a sampled check that a
	// restart left unproven are compared strictly (their directories).
	mirrorSub, mirrorStrict := mirrorIn(wire.ChecksumTime), mirrorIn(wire.ChecksumStrict)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	src, err := replicate.StartSource(ctx, replicate.SourceConfig{JobID: m.JobID, Root: m.Root, DataDir: a.cfg.DataDir,
		Opts: opts, TargetRoot: m.TargetRoot, Mirror: mirrorSub, MirrorStrict: mirrorStrict, Log: log, JournalMaxBytes: m.JournalMaxBytes,
		Dial: func(ctx context.Context) (*wire.Conn, error) { return Dial(ctx, m.Target, a.cfg.ClientTLS) }})
	if err != nil {
		fail(err)
		return
	}
	// SetLimits for the job reaches the running sync's shipping.
	defer a.registerLimiter(m.JobID, src.Limiter())()
	go func() {
		for {
			msg, err := c.ReadMsg()
			if err != nil {
				cancel(fmt.Errorf("%w: controller connection closed", wire.ErrCanceled))
				return
			}
			switch msg := msg.(type) {
			case *wire.Cancel:
				cancel(fmt.Errorf("%w: by controller", wire.ErrCanceled))
				return
			case *wire.SyncControl:
				switch msg.Action {
				case wire.SyncPause:
					src.Pause()
				case wire.SyncResume:
					src.Resume()
				case wire.SyncDrain:
					go func() {
						if err := src.WaitDrained(ctx); err != nil {
							return // the stop reports the error
						}
						st := statusOf(src.Stats())
						st.Drained = true
						if err := c.Send(&st); err != nil {
							cancel(err)
						}
					}()
				}
			}
		}
	}()
	log.Info("sync started", "root", m.Root, "target", m.Target, "target_root", m.TargetRoot)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			serr := src.Stop()
			st := statusOf(src.Stats())
			st.State = replicate.StateStopped
			if serr != nil {
				st.Error = serr.Error()
			}
			c.Send(&st)
			log.Info("sync stopped", "applied", st.AppliedTotal, "backlog", st.BacklogRecords)
			return
		case <-t.C:
			st := statusOf(src.Stats())
			if err := c.Send(&st); err != nil {
				cancel(err)
			}
		}
	}
}

func statusOf(s replicate.Stats) wire.SyncStatus {
	return wire.SyncStatus{State: s.State, LagMs: s.Lag.Milliseconds(), BacklogRecords: s.BacklogRecords,
		BacklogBytes: s.BacklogBytes, AppliedTotal: s.AppliedTotal, AppliedRate: int64(s.AppliedRate * 1000), Error: s.Err,
		BytesSent: s.ContentWireBytes + s.MirrorBytes, ContentBytes: s.ContentBytes, ContentWireBytes: s.ContentWireBytes}
}

// syncTarget serves a source agent's sync data connection.
func (a *Agent) syncTarget(ctx context.Context, c *wire.Conn, m *wire.SyncAttach, log *slog.Logger) {
	log = log.With("job", m.JobID, "role", "sync-target")
	if err := checkRoot(m.Root, true); err != nil {
		c.Send(wire.ErrorMsg(err))
		return
	}
	id := "sync-target:" + m.JobID
	if !a.claim(id) {
		c.Send(wire.ErrorMsg(fmt.Errorf("%w: %s", wire.ErrBusy, id)))
		return
	}
	defer a.release(id)
	pl, err := a.syncPayload(m.JobID)
	if err != nil {
		log.Warn("sync target refused", "err", err)
		c.Send(wire.ErrorMsg(err))
		return
	}
	err = replicate.ServeTarget(ctx, c, replicate.TargetConfig{Root: m.Root, DataDir: a.cfg.DataDir, JobID: m.JobID, Log: log,
		Attach: m, Payload: pl})
	if err != nil && ctx.Err() == nil {
		log.Info("sync target connection ended", "err", err)
	}
}

// SyncRequest describes a continuous sync.
type SyncRequest struct {
	JobID string // "" derives it from From and To (as JobID)
	From  Endpoint
	To    Endpoint
	Opts  mirror.Options
	// JournalMaxBytes bounds the source agent's journal (0: 1 GiB).
	JournalMaxBytes int64
}

// SyncSession is a running sync driven by a controller connection to the
// source agent. Closing it (Stop) stops the sync cleanly on the agent.
type SyncSession struct {
	conn *wire.Conn
}

// StartSync registers the sync's payload options (key included) with the
// target agent (SyncPrepare), then asks the source agent to start (or
// resume) the sync from → to: the agent starts change capture, mirrors the
// tree, then ships changes until the session is stopped. Errors: a dial or
// handshake failure, or an agent's refusal (a *wire.RemoteError).
func (c *Controller) StartSync(ctx context.Context, req SyncRequest) (*SyncSession, error) {
	if req.JobID == "" {
		req.JobID = "s-" + JobID(req.From, req.To)[2:]
	}
	if err := mirror.Normalize(&req.Opts); err != nil {
		return nil, err
	}
	// The target agent gets the payload key from us, not from the source.
	if err := c.prepareTarget(ctx, req); err != nil {
		return nil, fmt.Errorf("target agent %s: %w", req.To.Addr, err)
	}
	conn, err := Dial(ctx, req.From.Addr, c.TLS)
	if err != nil {
		return nil, fmt.Errorf("source agent %s: %w", req.From.Addr, err)
	}
	err = conn.Send(&wire.SyncStart{JobID: req.JobID, Root: req.From.Path, Target: req.To.Addr,
		TargetRoot: req.To.Path, Self: req.From.Addr, Opts: req.Opts, JournalMaxBytes: req.JournalMaxBytes})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("source agent %s: %w", req.From.Addr, err)
	}
	return &SyncSession{conn: conn}, nil
}

// Next waits for the next status report (about one a second). Errors: the
// agent's error, or the connection's (the agent died or the link was cut).
func (s *SyncSession) Next() (wire.SyncStatus, error) {
	m, err := s.conn.ReadMsg()
	if err != nil {
		return wire.SyncStatus{}, err
	}
	switch m := m.(type) {
	case *wire.SyncStatus:
		return *m, nil
	case *wire.Error:
		return wire.SyncStatus{}, m.Err()
	}
	return wire.SyncStatus{}, fmt.Errorf("%w: unexpected %s", wire.ErrProtocol, m.Kind())
}

// Pause stops shipping; capture and journaling go on.
func (s *SyncSession) Pause() error { return s.conn.Send(&wire.SyncControl{Action: wire.SyncPause}) }

// Resume restarts shipping.
func (s *SyncSession) Resume() error { return s.conn.Send(&wire.SyncControl{Action: wire.SyncResume}) }

// Drain asks the agent for a status with Drained set once every change
// made on the source before this call is applied and acknowledged on the
// target (read it with Next). Errors: the connection's.
func (s *SyncSession) Drain() error { return s.conn.Send(&wire.SyncControl{Action: wire.SyncDrain}) }

// Cancel asks the agent to stop the sync without waiting: the caller keeps
// reading Next until the status with state "stopped" (or an error), then
// calls Close.
func (s *SyncSession) Cancel() error { return s.conn.Send(&wire.Cancel{}) }

// Close closes the connection (which also stops the sync on the agent).
func (s *SyncSession) Close() error { return s.conn.Close() }

// Stop asks the agent to stop the sync and returns its final status.
func (s *SyncSession) Stop() (wire.SyncStatus, error) {
	defer s.conn.Close()
	if err := s.conn.Send(&wire.Cancel{}); err != nil {
		return wire.SyncStatus{}, err
	}
	s.conn.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		st, err := s.Next()
		if err != nil {
			return st, err
		}
		if st.State == replicate.StateStopped {
			if st.Error != "" {
				return st, errors.New(st.Error)
			}
			return st, nil
		}
	}
}
