package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// AgentEngine is the Engine of a `ferry agent`: it drives the agent's mirror
// engine through agent.Controller, from this host's agent (SelfAddr) to the
// target agent named in each request.
//
// Sync here is a polling sync: repeated mirrors in time mode with orphans
// deleted, every SyncInterval. It converges exactly (each pass is a full
// mirror of what changed) but its lag is the pass time plus the interval.
// The journaled sync engine (agent/capture + agent/journal) replaces it
// by implementing Engine.Sync and Engine.FinalSync with the same contract.
type AgentEngine struct {
	Controller *agent.Controller
	// SelfAddr is this host's agent data-channel address (host:port).
	SelfAddr string
	// SyncInterval is the pause between sync passes; zero means 1 s.
	SyncInterval time.Duration
}

var _ Engine = (*AgentEngine)(nil)

func (e *AgentEngine) endpoints(src, dstAddr, dst string) (agent.Endpoint, agent.Endpoint) {
	return agent.Endpoint{Addr: e.SelfAddr, Path: src}, agent.Endpoint{Addr: dstAddr, Path: dst}
}

// MirrorOptionsWire converts a job's options to the agent's mirror options.
func MirrorOptionsWire(o MirrorOptions) mirror.Options { return wireOptions(o) }

func wireOptions(o MirrorOptions) mirror.Options {
	return mirror.Options{Checksum: o.Checksum, Excludes: o.Excludes, Profile: o.Profile,
		OnError: o.OnError, Orphans: o.Orphans, OrphanDir: o.OrphanDir}
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

// Sync runs sync passes until ctx is cancelled. LagMillis is the pass time
// plus the interval (the oldest a change can be when it is applied);
// BacklogRecords is the number of files the last pass had to send.
func (e *AgentEngine) Sync(ctx context.Context, req SyncRequest, report func(SyncStats)) error {
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

// FinalSync runs passes until one finds nothing to send (the sources's
// services are stopped, so the tree no longer changes).
func (e *AgentEngine) FinalSync(ctx context.Context, req SyncRequest, report func(SyncStats)) (SyncStats, error) {
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
