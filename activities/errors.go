package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// Error types of the non-retryable application errors host activities
// return. Workflows list them in their retry policies and match on them.
const (
	ErrTypeInvalidRequest    = "InvalidRequest"
	ErrTypeEngineUnavailable = "EngineUnavailable"
	ErrTypeRemirrorRequired  = "RemirrorRequired"
	ErrTypeCutover           = "CutoverFailed"
)

// NonRetryableErrorTypes are the error types no retry can fix.
func NonRetryableErrorTypes() []string {
	return []string{ErrTypeInvalidRequest, ErrTypeEngineUnavailable, ErrTypeRemirrorRequired, ErrTypeCutover}
}

// classify turns an error from an engine or the host into what Temporal
// should do with it: cancellation passes through, ErrInvalidRequest and
// ErrRemirrorRequired become non-retryable, anything else is retried.
func classify(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, ErrInvalidRequest):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", op, err), ErrTypeInvalidRequest, err)
	case errors.Is(err, ErrRemirrorRequired):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", op, err), ErrTypeRemirrorRequired, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// invalid returns a non-retryable InvalidRequest error.
func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeInvalidRequest, nil)
}

func (h *Host) engine() (Engine, error) {
	if h.Engine == nil {
		return nil, temporal.NewNonRetryableApplicationError("host "+h.ID+": the agent has no data engine", ErrTypeEngineUnavailable, nil)
	}
	return h.Engine, nil
}
