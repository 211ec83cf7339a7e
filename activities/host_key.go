package activities

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry"
)

// KeySource hands a host the payload secrets of the jobs it runs. The
// agent's control-plane client implements it: it fetches the job's key over
// HTTPS with the host's client certificate, so that keys never travel
// through workflow inputs, results or histories.
//
// JobKey returns the secret of the job (at least 16 bytes). Errors must not
// contain the key; an error wrapping ErrInvalidRequest (for example: this
// host is not the job's source or target) is not retried.
type KeySource interface {
	JobKey(ctx context.Context, jobID string) ([]byte, error)
}

// encrypted reports whether the options ask for payload encryption.
func (o MirrorOptions) encrypted() bool {
	return o.Encrypt != "" && o.Encrypt != string(ferry.EncryptionNone)
}

// withKey fills o.Key from the host's KeySource when the job is encrypted.
// Errors (never containing the key): no KeySource (non-retryable), or the
// source's error, classified for Temporal.
func (h *Host) withKey(ctx context.Context, jobID string, o *MirrorOptions) error {
	if !o.encrypted() {
		return nil
	}
	if h.Keys == nil {
		return invalid("job %s: payload encryption %q needs the job key, but this agent has no control-plane key source", jobID, o.Encrypt)
	}
	k, err := h.Keys.JobKey(ctx, jobID)
	if err != nil {
		return classify("job key", fmt.Errorf("job %s: %w", jobID, err))
	}
	if len(k) < ferry.MinEncryptionKeySize {
		return invalid("job %s: the control plane returned a job key shorter than %d bytes", jobID, ferry.MinEncryptionKeySize)
	}
	o.Key = ferry.SecretKey(k)
	return nil
}
