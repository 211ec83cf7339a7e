package activities

import (
	"context"
	"errors"
	"testing"
	"time"
)

// lagEngine reports the lags in order, one every 10 ms, then waits.
type lagEngine struct {
	lags []int64
	err  error
}

func (e *lagEngine) Mirror(context.Context, MirrorRequest, func(MirrorProgress)) (MirrorSummary, error) {
	return MirrorSummary{}, nil
}

func (e *lagEngine) Sync(ctx context.Context, _ SyncRequest, report func(SyncStats)) error {
	for _, l := range e.lags {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		report(SyncStats{LagMillis: l})
	}
	if e.err != nil {
		return e.err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (e *lagEngine) FinalSync(context.Context, SyncRequest, func(SyncStats)) (SyncStats, error) {
	return SyncStats{}, nil
}

func (e *lagEngine) Verify(context.Context, VerifyRequest) (VerifyReport, error) {
	return VerifyReport{Count: 2, Differences: []Difference{{Path: "a"}, {Path: "b"}}}, nil
}

func syncOnce(t *testing.T, eng Engine, in SyncInput) (SyncResult, error) {
	t.Helper()
	h := &Host{ID: "src", Engine: eng, HeartbeatEvery: 20 * time.Millisecond}
	v, err := actEnv(h).ExecuteActivity(h.Sync, in)
	if err != nil {
		return SyncResult{}, err
	}
	var r SyncResult
	return r, v.Get(&r)
}

func TestSyncReturnsWhenReadyOrLagging(t *testing.T) {
	lags := []int64{5000, 4000, 100, 200, 100, 100, 100, 100, 100, 100, 100, 100, 100}
	r, err := syncOnce(t, &lagEngine{lags: lags}, SyncInput{LagThreshold: time.Second, StableFor: 50 * time.Millisecond, ReturnWhenReady: true, Window: time.Minute})
	if err != nil || !r.Ready || r.Lagging || r.Stats.LagMillis > 1000 {
		t.Fatalf("ready: %+v %v", r, err)
	}
	lags = []int64{100, 100, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000}
	r, err = syncOnce(t, &lagEngine{lags: lags}, SyncInput{LagThreshold: time.Second, StableFor: 50 * time.Millisecond, ReturnWhenLagging: true, Window: time.Minute})
	if err != nil || !r.Lagging || r.Ready {
		t.Fatalf("lagging: %+v %v", r, err)
	}
	// Neither: the window ends it.
	start := time.Now()
	r, err = syncOnce(t, &lagEngine{lags: []int64{100}}, SyncInput{LagThreshold: time.Second, StableFor: time.Hour, ReturnWhenReady: true, Window: 200 * time.Millisecond})
	if err != nil || r.Ready || r.Lagging || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("window: %+v %v", r, err)
	}
}

func TestSyncClassifiesErrors(t *testing.T) {
	r, err := syncOnce(t, &lagEngine{err: ErrRemirrorRequired}, SyncInput{Window: time.Minute})
	if err != nil || !r.RemirrorRequired {
		t.Fatalf("remirror: %+v %v", r, err)
	}
	_, err = syncOnce(t, &lagEngine{err: errors.Join(ErrInvalidRequest, errors.New("bad root"))}, SyncInput{Window: time.Minute})
	if err == nil || !isNonRetryable(err) {
		t.Fatalf("invalid request: %v", err)
	}
	_, err = syncOnce(t, &lagEngine{err: errors.New("connection reset")}, SyncInput{Window: time.Minute})
	if err == nil || isNonRetryable(err) {
		t.Fatalf("transient error: %v", err)
	}
	h := &Host{ID: "src"}
	if _, err := actEnv(h).ExecuteActivity(h.Mirror, MirrorInput{}); err == nil || !isNonRetryable(err) {
		t.Fatalf("no engine: %v", err)
	}
}

func TestVerifyReportsDifferences(t *testing.T) {
	h := &Host{ID: "src", Engine: &lagEngine{}}
	v, err := actEnv(h).ExecuteActivity(h.Verify, VerifyInput{})
	if err != nil {
		t.Fatal(err)
	}
	var r VerifyResult
	v.Get(&r)
	if r.Report.Identical || r.Report.Count != 2 {
		t.Fatalf("%+v", r)
	}
}

func isNonRetryable(err error) bool {
	var app *temporalApplicationError
	return errors.As(err, &app) && app.NonRetryable()
}
