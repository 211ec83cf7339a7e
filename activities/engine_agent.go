package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// AgentEngine is the Engine of a `ferry agent`: it drives the agent's mirror
// engine through agent.Controller, from this host's agent (SelfAddr) to the
// target agent named in each request.
//
// Sync is the agents' journaled continuous sync (agent/replicate). Every
// start of a sync session resyncs with a mirror first, so the job's sync
// windows should be long (JobSpec.SyncWindow).
type AgentEngine struct {
	Controller *agent.Controller
	// SelfAddr is this host's agent data-channel address (host:port).
	SelfAddr string
	// Polling replaces the journaled sync with repeated time-mode mirrors
	// (orphans deleted) every SyncInterval: slower to notice changes but
	// needing no change capture on the source.
	Polling bool
	// SyncInterval is the pause between polling passes; zero means 1 s.
	SyncInterval time.Duration
}

var (
	_ Engine          = (*AgentEngine)(nil)
	_ BandwidthSetter = (*AgentEngine)(nil)
)

// SetBandwidth implements BandwidthSetter through the agent's SetLimits
// control message to this host's own agent (the sender).
func (e *AgentEngine) SetBandwidth(ctx context.Context, jobID, schedule string) error {
	return e.Controller.SetBandwidth(ctx, e.SelfAddr, jobID, schedule)
}

func (e *AgentEngine) endpoints(src, dstAddr, dst string) (agent.Endpoint, agent.Endpoint) {
	return agent.Endpoint{Addr: e.SelfAddr, Path: src}, agent.Endpoint{Addr: dstAddr, Path: dst}
}

// MirrorOptionsWire converts a job's options to the agent's mirror options.
func MirrorOptionsWire(o MirrorOptions) mirror.Options { return wireOptions(o) }

func wireOptions(o MirrorOptions) mirror.Options {
	return mirror.Options{Checksum: o.Checksum, Excludes: o.Excludes, Profile: o.Profile,
		OnError: o.OnError, Orphans: o.Orphans, OrphanDir: o.OrphanDir, BWLimit: o.BWLimit,
		Compress: o.Compress, Encrypt: o.Encrypt, Key: []byte(o.Key)}
}

// engineErr marks errors no retry can fix as ErrInvalidRequest.
func engineErr(err error) error {
	if errors.Is(err, mirror.ErrInvalidOptions) || errors.Is(err, wire.ErrVersionMismatch) || errors.Is(err, wire.ErrBadPath) {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return err
}

// Mirror runs one mirror from this agent to the target agent under the job's
// ID, so that the receiver's checkpoints resume a cut transfer.
func (e *AgentEngine) Mirror(ctx context.Context, req MirrorRequest, report func(MirrorProgress)) (MirrorSummary, error) {
	from, to := e.endpoints(req.SourcePath, req.TargetAddr, req.TargetPath)
	sum, err := e.Controller.Mirror(ctx, agent.MirrorRequest{JobID: req.JobID, From: from, To: to, Opts: wireOptions(req.Options)},
		func(p mirror.Progress) {
			report(MirrorProgress{FilesTotal: p.FilesTotal, BytesTotal: p.BytesTotal, FilesDone: p.FilesDone,
				BytesDone: p.BytesDone, WireBytes: p.WireBytes, ScanDone: p.ScanDone})
		})
	if err != nil {
		return MirrorSummary{}, engineErr(err)
	}
	out := MirrorSummary{Files: sum.Files, Bytes: sum.Bytes, BytesSent: sum.BytesSent, BytesOnWire: sum.BytesOnWire}
	for _, s := range sum.Skipped {
		out.Skipped = append(out.Skipped, Skip{Path: s.Path, Reason: s.Reason})
	}
	return out, nil
}

// pass is one sync pass: a time-mode mirror that deletes orphans in the
// replica (it is Ferry's own staging directory).
func (e *AgentEngine) pass(ctx context.Context, req SyncRequest) (mirror.Summary, error) {
	opts := wireOptions(req.Options)
	opts.Checksum, opts.Orphans, opts.OrphanDir = wire.ChecksumTime, wire.OrphansDelete, ""
	from, to := e.endpoints(req.SourcePath, req.TargetAddr, req.TargetPath)
	sum, err := e.Controller.Mirror(ctx, agent.MirrorRequest{JobID: req.JobID, From: from, To: to, Opts: opts}, nil)
	return sum, engineErr(err)
}

// Sync runs the agents' journaled continuous sync (agent.Controller.StartSync:
// capture, a resync mirror, then the journal shipped in order) until ctx is
// cancelled, reporting the source agent's status about once a second. With
// Polling set it runs repeated mirrors instead.
func (e *AgentEngine) Sync(ctx context.Context, req SyncRequest, report func(SyncStats)) error {
	if e.Polling {
		return e.pollSync(ctx, req, report)
	}
	sess, err := e.startSync(ctx, req)
	if err != nil {
		return err
	}
	for {
		st, err := sess.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return engineErr(fmt.Errorf("sync: %w", err))
		}
		if st.State == replicate.StateStopped {
			return fmt.Errorf("sync stopped by the source agent: %s", st.Error)
		}
		report(syncStats(st))
		if ctx.Err() != nil {
			sess.Stop()
			return ctx.Err()
		}
	}
}

func (e *AgentEngine) startSync(ctx context.Context, req SyncRequest) (*agent.SyncSession, error) {
	from, to := e.endpoints(req.SourcePath, req.TargetAddr, req.TargetPath)
	sess, err := e.Controller.StartSync(ctx, agent.SyncRequest{JobID: req.JobID, From: from, To: to, Opts: wireOptions(req.Options)})
	if err != nil {
		return nil, engineErr(err)
	}
	return sess, nil
}

func syncStats(st wire.SyncStatus) SyncStats {
	return SyncStats{State: st.State, LagMillis: st.LagMs, BacklogRecords: st.BacklogRecords, BacklogBytes: st.BacklogBytes,
		AppliedTotal: st.AppliedTotal, RateRecords: float64(st.AppliedRate) / 1000, BytesSent: st.BytesSent}
}

// FinalSync runs the journaled sync and asks the source agent to drain
// it (agent.SyncSession.Drain): the agent places a barrier behind every
// change already made on the source (the services are stopped), waits for
// change capture to deliver it and for the target to acknowledge every
// journal record up to it, and reports Drained; then the sync is stopped.
// An empty backlog alone is no proof: events still in the kernel's queue
// are not in the backlog yet.
func (e *AgentEngine) FinalSync(ctx context.Context, req SyncRequest, report func(SyncStats)) (SyncStats, error) {
	if e.Polling {
		return e.pollFinal(ctx, req, report)
	}
	sess, err := e.startSync(ctx, req)
	if err != nil {
		return SyncStats{}, err
	}
	if err := sess.Drain(); err != nil {
		sess.Close()
		return SyncStats{}, engineErr(fmt.Errorf("final sync: %w", err))
	}
	for {
		st, err := sess.Next()
		if err != nil {
			if ctx.Err() != nil {
				return SyncStats{}, ctx.Err()
			}
			return SyncStats{}, engineErr(fmt.Errorf("final sync: %w", err))
		}
		if st.State == replicate.StateStopped {
			return syncStats(st), fmt.Errorf("final sync stopped by the source agent: %s", st.Error)
		}
		report(syncStats(st))
		if ctx.Err() != nil {
			sess.Stop()
			return SyncStats{}, ctx.Err()
		}
		if st.Drained {
			fin, err := sess.Stop()
			if err != nil {
				return syncStats(fin), engineErr(fmt.Errorf("final sync: stop: %w", err))
			}
			return syncStats(fin), nil
		}
	}
}

// pollSync runs sync passes until ctx is cancelled. LagMillis is the pass
// time plus the interval (the oldest a change can be when it is applied);
// BacklogRecords is the number of files the last pass had to send.
func (e *AgentEngine) pollSync(ctx context.Context, req SyncRequest, report func(SyncStats)) error {
	interval := e.SyncInterval
	if interval <= 0 {
		interval = time.Second
	}
	var st SyncStats
	for {
		start := time.Now()
		sum, err := e.pass(ctx, req)
		if err != nil {
			return err
		}
		d := time.Since(start)
		st.LagMillis = (d + interval).Milliseconds()
		st.BacklogRecords = sum.FilesSent
		st.AppliedTotal += sum.FilesSent + sum.Target.OrphansRemoved
		if s := d.Seconds(); s > 0 {
			st.RateBytes = float64(sum.BytesSent) / s
		}
		report(st)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// pollFinal runs passes until one finds nothing to send.
func (e *AgentEngine) pollFinal(ctx context.Context, req SyncRequest, report func(SyncStats)) (SyncStats, error) {
	var st SyncStats
	for range 10 {
		sum, err := e.pass(ctx, req)
		if err != nil {
			return st, err
		}
		st.AppliedTotal += sum.FilesSent + sum.Target.OrphansRemoved
		report(st)
		if sum.FilesSent == 0 && sum.Target.OrphansRemoved == 0 && sum.Target.MetaUpdated == 0 {
			return st, nil
		}
	}
	return st, errors.New("final sync: the source tree still changes after 10 passes (are its services stopped?)")
}

// Verify compares the source tree with the target tree through both agents.
func (e *AgentEngine) Verify(ctx context.Context, req VerifyRequest) (VerifyReport, error) {
	from, to := e.endpoints(req.SourcePath, req.TargetAddr, req.TargetPath)
	diffs, err := e.Controller.Verify(ctx, from, to, wireOptions(req.Options))
	if err != nil {
		return VerifyReport{}, engineErr(err)
	}
	rep := VerifyReport{Count: len(diffs), Identical: len(diffs) == 0}
	for _, d := range diffs {
		kinds := make([]string, len(d.Kinds))
		for i, k := range d.Kinds {
			kinds[i] = string(k)
		}
		rep.Differences = append(rep.Differences, Difference{Path: d.Path, Kind: strings.Join(kinds, ","), Detail: d.Detail})
	}
	return rep, nil
}
