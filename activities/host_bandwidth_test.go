package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// bwEngine is a lagEngine that can change bandwidth, answering err.
type bwEngine struct {
	lagEngine
	err  error
	got  []string
	jobs []string
}

func (e *bwEngine) SetBandwidth(_ context.Context, jobID, schedule string) error {
	e.jobs, e.got = append(e.jobs, jobID), append(e.got, schedule)
	return e.err
}

func setBandwidth(t *testing.T, eng Engine) (SetBandwidthResult, error) {
	t.Helper()
	h := &Host{ID: "src", Engine: eng}
	v, err := actEnv(h).ExecuteActivity(h.SetBandwidth, SetBandwidthInput{JobID: "job1", Schedule: "2M"})
	if err != nil {
		return SetBandwidthResult{}, err
	}
	var res SetBandwidthResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestSetBandwidth(t *testing.T) {
	eng := &bwEngine{}
	if res, err := setBandwidth(t, eng); err != nil || !res.Applied || len(eng.got) != 1 || eng.got[0] != "2M" || eng.jobs[0] != "job1" {
		t.Fatalf("applied: %+v %v (engine got %v for %v)", res, err, eng.got, eng.jobs)
	}
	// No transfer running: not an error, the next one starts with it.
	eng.err = fmt.Errorf("remote: %w", wire.ErrUnknownJob)
	if res, err := setBandwidth(t, eng); err != nil || res.Applied {
		t.Fatalf("no transfer: %+v %v", res, err)
	}
	// A schedule the agent refuses is not retried.
	eng.err = fmt.Errorf("remote: %w", wire.ErrProtocol)
	_, err := setBandwidth(t, eng)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != ErrTypeInvalidRequest {
		t.Fatalf("refused schedule: %v", err)
	}
	// An engine without the capability says so, not retryable.
	_, err = setBandwidth(t, &lagEngine{})
	if !errors.As(err, &ae) || ae.Type() != ErrTypeUnsupported || !strings.Contains(ae.Error(), "not supported by this agent") {
		t.Fatalf("engine without SetBandwidth: %v", err)
	}
}
