package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// optionsAt sends update-options at workflow time d; the outcome lands in
// *rejected, *res and *err.
func (h *harness) optionsAt(d time.Duration, in OptionsInput, rejected *error, res *OptionsResult, err *error) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(UpdateOptions, "options-"+d.String(), &testsuite.TestUpdateCallback{
			OnReject: func(e error) { *rejected = e },
			OnAccept: func() {},
			OnComplete: func(v any, e error) {
				*err = e
				if r, ok := v.(OptionsResult); ok {
					*res = r
				}
			},
		}, in)
	}, d)
}

// TestUpdateOptionsWhileRunning: options changed while mirroring reach the
// source agent (bandwidth) at once and every later step (sync options, lag
// threshold, cutover hooks); during cutover and with nothing to change the
// validator refuses.
func TestUpdateOptionsWhileRunning(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var setBW []activities.SetBandwidthInput
	var syncIns []activities.SyncInput
	var host *activities.Host
	h.env.OnActivity(host.SetBandwidth, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SetBandwidthInput) (activities.SetBandwidthResult, error) {
			mu.Lock()
			defer mu.Unlock()
			setBW = append(setBW, in)
			return activities.SetBandwidthResult{Applied: true}, nil
		})
	ready := h.syncReady
	h.syncReady = func(in activities.SyncInput) (activities.SyncResult, error) {
		mu.Lock()
		syncIns = append(syncIns, in)
		mu.Unlock()
		return ready(in)
	}
	h.finalAfter = time.Minute // the cutover is still running at 3m30s

	bw, lag := "1M", 7*time.Second
	pre := []activities.Hook{{Name: "stop-db", Command: []string{"/bin/sh", "-c", "true"}, MustSucceed: true}}
	var rej1, rej2, rej3 error
	var res1, res2, res3 OptionsResult
	var err1, err2, err3 error
	h.at(time.Second, UpdateStart)
	h.optionsAt(20*time.Second, OptionsInput{Actor: "alice"}, &rej1, &res1, &err1)
	h.optionsAt(30*time.Second, OptionsInput{Actor: "alice", BandwidthSchedule: &bw, LagThreshold: &lag,
		Cutover: &CutoverHooks{PreCutover: pre}}, &rej2, &res2, &err2)
	h.at(3*time.Minute, UpdateCutover)
	h.optionsAt(3*time.Minute+30*time.Second, OptionsInput{Actor: "alice", BandwidthSchedule: &bw}, &rej3, &res3, &err3)
	res, err := h.run(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	if res.State != ferry.JobCutoverComplete {
		t.Fatalf("job ended %s", res.State)
	}
	if rej1 == nil || !strings.Contains(rej1.Error(), "no option") {
		t.Errorf("empty change not refused: %v", rej1)
	}
	if rej2 != nil || err2 != nil || res2.State != ferry.JobMirroring || !res2.BandwidthApplied {
		t.Fatalf("change while mirroring: rejected %v, err %v, %+v", rej2, err2, res2)
	}
	if rej3 == nil || !strings.Contains(rej3.Error(), string(ferry.JobCuttingOver)) {
		t.Errorf("change while cutting over not refused naming the state: %v", rej3)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(setBW) != 1 || setBW[0].Schedule != "1M" || setBW[0].JobID != "job1" {
		t.Errorf("bandwidth delivered to the source agent: %+v", setBW)
	}
	if len(syncIns) == 0 || syncIns[0].Request.Options.BWLimit != "1M" || syncIns[0].LagThreshold != lag {
		t.Errorf("sync after the change runs with %+v", syncIns)
	}
	h.mu.Lock()
	calls := strings.Join(h.calls, " ")
	h.mu.Unlock()
	if !strings.Contains(calls, "RunHook:pre-cutover:stop-db") {
		t.Errorf("the changed pre-cutover hook did not run: %s", calls)
	}
	var found bool
	for _, e := range h.eventsOf(ferry.JobEventAction) {
		if e.Actor == "alice" && strings.Contains(e.Message, `bandwidth schedule "1M"`) && strings.Contains(e.Message, "running transfer follows") {
			found = true
		}
	}
	if !found {
		t.Errorf("no job event records the change: %+v", h.eventsOf(ferry.JobEventAction))
	}
}
