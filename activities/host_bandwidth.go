package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// ErrTypeUnsupported is the error type of a host activity the host's agent
// cannot carry out (it lacks the capability); no retry can fix it.
const ErrTypeUnsupported = "Unsupported"

// BandwidthSetter is the optional Engine capability of changing a running
// transfer's bandwidth schedule.
type BandwidthSetter interface {
	// SetBandwidth replaces the bandwidth schedule (bwlimit syntax, "" or
	// "off" for none) of job jobID's running transfer from this host.
	// Returns an error wrapping wire.ErrUnknownJob when the job sends
	// nothing from this host now, ErrInvalidRequest for a bad schedule.
	SetBandwidth(ctx context.Context, jobID, schedule string) error
}

// SetBandwidthInput names the job whose transfer from this (source) host
// follows a new bandwidth schedule.
type SetBandwidthInput struct {
	JobID    string
	Schedule string // bwlimit syntax; "" or "off" for none
}

// SetBandwidthResult says whether a running transfer took the schedule.
type SetBandwidthResult struct {
	// Applied is false when no transfer of the job was running: the next
	// one starts with the schedule from the job's options.
	Applied bool `json:"applied"`
}

// SetBandwidth hands a new bandwidth schedule to the job's running transfer
// on this host's agent, which follows it within a second. It fails with a
// non-retryable Unsupported error when the agent's engine cannot change a
// running transfer's limits, and InvalidRequest for a schedule the agent
// refuses.
func (h *Host) SetBandwidth(ctx context.Context, in SetBandwidthInput) (SetBandwidthResult, error) {
	eng, err := h.engine()
	if err != nil {
		return SetBandwidthResult{}, err
	}
	bs, ok := eng.(BandwidthSetter)
	if !ok {
		return SetBandwidthResult{}, temporal.NewNonRetryableApplicationError(
			"host "+h.ID+": changing a running transfer's bandwidth is not supported by this agent", ErrTypeUnsupported, nil)
	}
	err = bs.SetBandwidth(ctx, in.JobID, in.Schedule)
	switch {
	case err == nil:
		return SetBandwidthResult{Applied: true}, nil
	case errors.Is(err, wire.ErrUnknownJob):
		return SetBandwidthResult{Applied: false}, nil
	case errors.Is(err, wire.ErrProtocol):
		return SetBandwidthResult{}, invalid("host %s: bandwidth schedule %q refused: %v", h.ID, in.Schedule, err)
	}
	return SetBandwidthResult{}, classify(fmt.Sprintf("set bandwidth of job %s", in.JobID), err)
}
