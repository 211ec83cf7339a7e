// Package activities holds Ferry's Temporal activities. Controller activities
// run in `ferry worker` and hold the control plane's dependencies; host-bound
// activities run inside the agent of the host they act on.
package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/ferry-migrate/ferry"
)

// SettingStore is what the controller needs to record settings.
type SettingStore interface {
	// PutSetting creates or replaces one setting.
	// Returns EINVALID if the key or value is malformed.
	PutSetting(ctx context.Context, s *ferry.Setting) error
}

// Controller holds the controller activities' dependencies.
type Controller struct {
	Settings SettingStore
	// Events receives job events; nil logs them instead (tests, dev).
	Events JobEventStore
	// JobStates records each job's state changes with their events; nil
	// sends them to Events like any other event.
	JobStates JobStateStore
	// Schedules manages compare-plan schedules; nil refuses them.
	Schedules ScheduleClient
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// RecordSelfTestInput identifies a self-test run.
type RecordSelfTestInput struct {
	WorkflowID  string
	RequestedBy string
}

// RecordSelfTestResult is the setting the self-test wrote.
type RecordSelfTestResult struct {
	Key   string
	Value string
}

// RecordSelfTest writes the setting "selftest.last" through the store.
func (c *Controller) RecordSelfTest(ctx context.Context, in RecordSelfTestInput) (RecordSelfTestResult, error) {
	value := fmt.Sprintf("%s by %s at %s", in.WorkflowID, in.RequestedBy, c.now().UTC().Format(time.RFC3339Nano))
	raw, err := json.Marshal(value)
	if err != nil {
		return RecordSelfTestResult{}, err
	}
	if err := c.Settings.PutSetting(ctx, &ferry.Setting{Key: "selftest.last", Value: raw}); err != nil {
		return RecordSelfTestResult{}, fmt.Errorf("record self-test: %w", err)
	}
	activity.GetLogger(ctx).Info("self-test recorded", "workflow_id", in.WorkflowID)
	return RecordSelfTestResult{Key: "selftest.last", Value: value}, nil
}
