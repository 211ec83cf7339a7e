package activities

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// MirrorInput is one mirror run of a job.
type MirrorInput struct {
	Request MirrorRequest
}

// MirrorResult is a finished mirror. ResumedFrom is the progress the last
// failed attempt had heartbeated (zero on a first attempt).
type MirrorResult struct {
	Summary     MirrorSummary
	ResumedFrom MirrorProgress
	Attempt     int32
}

// Mirror runs on the source host: it copies the job's tree to the target
// agent, heartbeating its progress. A retried attempt reads the previous
// attempt's heartbeat details (reported as ResumedFrom) and the engine
// continues from its own checkpoint, so completed files are not sent again.
// Returns a non-retryable InvalidRequest error for a request the engine
// refuses.
func (h *Host) Mirror(ctx context.Context, in MirrorInput) (MirrorResult, error) {
	eng, err := h.engine()
	if err != nil {
		return MirrorResult{}, err
	}
	if err := h.withKey(ctx, in.Request.JobID, &in.Request.Options); err != nil {
		return MirrorResult{}, err
	}
	info := activity.GetInfo(ctx)
	var resumed MirrorProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &resumed) // progress display only
	}
	activity.GetLogger(ctx).Info("mirror starting", "job", in.Request.JobID, "attempt", info.Attempt, "resumed_bytes", resumed.BytesDone)
	hb := startHeartbeat(ctx, h.heartbeatEvery(), resumed)
	defer hb.stop()
	sum, err := eng.Mirror(ctx, in.Request, func(p MirrorProgress) { hb.set(p) })
	if err != nil {
		return MirrorResult{}, classify("mirror", err)
	}
	sum.Skipped = capSkips(sum.Skipped)
	return MirrorResult{Summary: sum, ResumedFrom: resumed, Attempt: info.Attempt}, nil
}

// SyncInput asks for one window of continuous sync. The activity returns
// when the first of these happens: Window elapsed; ReturnWhenReady and the
// lag stayed at most LagThreshold for StableFor; ReturnWhenLagging and the lag
// stayed above LagThreshold for StableFor. Cancelling the activity stops
// shipping (the journal keeps what is not yet shipped).
type SyncInput struct {
	Request           SyncRequest
	LagThreshold      time.Duration
	StableFor         time.Duration
	ReturnWhenReady   bool
	ReturnWhenLagging bool
	Window            time.Duration
}

// SyncResult is why a sync window ended and the last stats.
type SyncResult struct {
	Stats            SyncStats
	Ready            bool // lag below the threshold for StableFor
	Lagging          bool // lag above the threshold for StableFor
	RemirrorRequired bool // the journal overflowed: mirror again
}

// Sync runs on the source host: it ships captured changes until one of the
// SyncInput conditions holds, heartbeating lag and backlog. Returns
// ctx.Err() when cancelled by the workflow (pause, cutover, cancel).
func (h *Host) Sync(ctx context.Context, in SyncInput) (SyncResult, error) {
	eng, err := h.engine()
	if err != nil {
		return SyncResult{}, err
	}
	if err := h.withKey(ctx, in.Request.JobID, &in.Request.Options); err != nil {
		return SyncResult{}, err
	}
	var last SyncStats
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &last)
	}
	hb := startHeartbeat(ctx, h.heartbeatEvery(), last)
	defer hb.stop()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu    sync.Mutex
		res   SyncResult
		since time.Time // when the lag last crossed the threshold
		below bool
	)
	window := in.Window
	if window <= 0 {
		window = 5 * time.Minute
	}
	timer := time.AfterFunc(window, stop)
	defer timer.Stop()
	report := func(s SyncStats) {
		hb.set(s)
		now := h.now()
		mu.Lock()
		defer mu.Unlock()
		res.Stats = s
		isBelow := time.Duration(s.LagMillis)*time.Millisecond <= in.LagThreshold && (s.State == "" || s.State == "syncing")
		if since.IsZero() || isBelow != below {
			since, below = now, isBelow
		}
		stable := now.Sub(since) >= in.StableFor
		switch {
		case in.ReturnWhenReady && below && stable:
			res.Ready = true
			stop()
		case in.ReturnWhenLagging && !below && stable:
			res.Lagging = true
			stop()
		}
	}
	err = eng.Sync(runCtx, in.Request, report)
	mu.Lock()
	defer mu.Unlock()
	switch {
	case ctx.Err() != nil:
		return SyncResult{}, ctx.Err()
	case errors.Is(err, ErrRemirrorRequired):
		res.RemirrorRequired = true
		return res, nil
	case err != nil && runCtx.Err() == nil:
		return SyncResult{}, classify("sync", err)
	}
	return res, nil
}

// FinalSyncInput asks for the backlog to be drained to zero.
type FinalSyncInput struct {
	Request SyncRequest
}

// FinalSyncResult is the state after the drain.
type FinalSyncResult struct {
	Stats SyncStats
}

// FinalSync runs on the source host during cutover, after the pre-cutover
// hooks stopped the services: it ships every captured change until the
// backlog is zero.
func (h *Host) FinalSync(ctx context.Context, in FinalSyncInput) (FinalSyncResult, error) {
	eng, err := h.engine()
	if err != nil {
		return FinalSyncResult{}, err
	}
	if err := h.withKey(ctx, in.Request.JobID, &in.Request.Options); err != nil {
		return FinalSyncResult{}, err
	}
	hb := startHeartbeat(ctx, h.heartbeatEvery(), SyncStats{})
	defer hb.stop()
	s, err := eng.FinalSync(ctx, in.Request, func(s SyncStats) { hb.set(s) })
	if err != nil {
		return FinalSyncResult{}, classify("final sync", err)
	}
	return FinalSyncResult{Stats: s}, nil
}

// VerifyInput names the trees to compare.
type VerifyInput struct {
	Request VerifyRequest
}

// VerifyResult is the difference report.
type VerifyResult struct {
	Report VerifyReport
}

// Verify runs on the source host: a full compare of content and metadata of
// the source tree with the replica on the target. Differences are not an
// error; the report says what they are.
func (h *Host) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	eng, err := h.engine()
	if err != nil {
		return VerifyResult{}, err
	}
	if err := h.withKey(ctx, in.Request.JobID, &in.Request.Options); err != nil {
		return VerifyResult{}, err
	}
	hb := startHeartbeat(ctx, h.heartbeatEvery(), nil)
	defer hb.stop()
	rep, err := eng.Verify(ctx, in.Request)
	if err != nil {
		return VerifyResult{}, classify("verify", err)
	}
	if rep.Count < len(rep.Differences) {
		rep.Count = len(rep.Differences)
	}
	if len(rep.Differences) > MaxReportedDifferences {
		rep.Differences = rep.Differences[:MaxReportedDifferences]
	}
	rep.Identical = rep.Count == 0
	return VerifyResult{Report: rep}, nil
}

func capSkips(s []Skip) []Skip {
	if len(s) > MaxReportedDifferences {
		return s[:MaxReportedDifferences]
	}
	return s
}

// heartbeat records the latest details at least every interval, so that an
// engine that reports rarely does not trip the heartbeat timeout.
type heartbeat struct {
	mu     sync.Mutex
	latest any // guarded by mu
	ctx    context.Context
	done   chan struct{}
	wg     sync.WaitGroup
}

func startHeartbeat(ctx context.Context, every time.Duration, initial any) *heartbeat {
	hb := &heartbeat{latest: initial, ctx: ctx, done: make(chan struct{})}
	hb.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hb.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				hb.mu.Lock()
				v := hb.latest
				hb.mu.Unlock()
				hb.record(v)
			}
		}
	})
	return hb
}

func (hb *heartbeat) record(v any) {
	if v == nil {
		activity.RecordHeartbeat(hb.ctx)
		return
	}
	activity.RecordHeartbeat(hb.ctx, v)
}

// set stores v and heartbeats it (the SDK throttles heartbeats itself).
func (hb *heartbeat) set(v any) {
	hb.mu.Lock()
	hb.latest = v
	hb.mu.Unlock()
	hb.record(v)
}

func (hb *heartbeat) stop() {
	close(hb.done)
	hb.wg.Wait()
}
