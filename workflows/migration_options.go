package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// UpdateOptions is the Update that changes a running job's options. It
// takes an OptionsInput and answers an OptionsResult; its validator refuses
// a finished job, a job cutting over (its hooks are running) and an input
// that changes nothing.
const UpdateOptions = "update-options"

// OptionsInput carries the options to change; nil fields stay as they are.
type OptionsInput struct {
	Actor string `json:"actor"`
	// BandwidthSchedule replaces the source's schedule (bwlimit syntax, ""
	// for none); a running mirror or sync follows it at once.
	BandwidthSchedule *string        `json:"bandwidthSchedule,omitempty"`
	LagThreshold      *time.Duration `json:"lagThreshold,omitempty"`
	HostGracePeriod   *time.Duration `json:"hostGracePeriod,omitempty"`
	// Cutover replaces every cutover hook at once (pre-cutover, post-cutover
	// actions and the source shutdown).
	Cutover *CutoverHooks `json:"cutover,omitempty"`
}

// CutoverHooks are a job's cutover hooks as JobSpec holds them.
type CutoverHooks struct {
	PreCutover     []activities.Hook `json:"preCutover,omitempty"`
	PostCutover    []activities.Hook `json:"postCutover,omitempty"`
	ShutdownSource *activities.Hook  `json:"shutdownSource,omitempty"`
}

// OptionsResult says what the change reached.
type OptionsResult struct {
	State ferry.JobState `json:"state"`
	// BandwidthApplied is true when a running transfer took the new
	// bandwidth schedule; false when none ran (the next one starts with it).
	BandwidthApplied bool `json:"bandwidthApplied,omitempty"`
	// BandwidthError says why the running transfer did not take the new
	// schedule (e.g. the agent does not support it); the options are
	// changed all the same.
	BandwidthError string `json:"bandwidthError,omitempty"`
}

// OptionsFromJob returns the OptionsInput that sets every changeable option
// of j, by actor.
func OptionsFromJob(j *ferry.Job, actor string) OptionsInput {
	bw, lag, grace, hooks := j.BandwidthSchedule, j.LagThreshold, j.HostOfflineGrace, cutoverHooks(j)
	return OptionsInput{Actor: actor, BandwidthSchedule: &bw, LagThreshold: &lag, HostGracePeriod: &grace, Cutover: &hooks}
}

func (m *migration) validateOptions(in OptionsInput) error {
	if m.closed {
		return ferry.Errorf(ferry.ECONFLICT, "cannot %s: job is %s (finished)", UpdateOptions, m.st.State)
	}
	switch m.st.State {
	case ferry.JobCuttingOver:
		return ferry.Errorf(ferry.ECONFLICT, "cannot %s: job is %s", UpdateOptions, m.st.State)
	case ferry.JobCancelled, ferry.JobFailed:
		return ferry.Errorf(ferry.ECONFLICT, "cannot %s: job is %s (finished)", UpdateOptions, m.st.State)
	}
	if in.BandwidthSchedule == nil && in.LagThreshold == nil && in.HostGracePeriod == nil && in.Cutover == nil {
		return ferry.Errorf(ferry.EINVALID, "%s: no option to change", UpdateOptions)
	}
	if in.LagThreshold != nil && *in.LagThreshold < 0 || in.HostGracePeriod != nil && *in.HostGracePeriod < 0 {
		return ferry.Errorf(ferry.EINVALID, "%s: durations must not be negative", UpdateOptions)
	}
	if in.BandwidthSchedule != nil && len(*in.BandwidthSchedule) > 4096 {
		return ferry.Errorf(ferry.EINVALID, "%s: bandwidth schedule longer than 4096 bytes", UpdateOptions)
	}
	return nil
}

// updateOptions applies the change to the spec (so later activities and a
// continued-as-new run use it), records it as a job event, and hands a new
// bandwidth schedule to the source agent when a transfer may be running.
func (m *migration) updateOptions(ctx workflow.Context, in OptionsInput) (OptionsResult, error) {
	var changed []string
	if in.LagThreshold != nil {
		m.spec.LagThreshold = *in.LagThreshold
		changed = append(changed, "lag threshold "+m.spec.LagThreshold.String())
	}
	if in.HostGracePeriod != nil {
		m.spec.HostGracePeriod = *in.HostGracePeriod
		changed = append(changed, "host offline grace "+m.spec.HostGracePeriod.String())
	}
	if in.Cutover != nil {
		m.spec.PreCutover, m.spec.PostCutover, m.spec.ShutdownSource = in.Cutover.PreCutover, in.Cutover.PostCutover, in.Cutover.ShutdownSource
		changed = append(changed, "cutover hooks")
	}
	m.spec = m.spec.withDefaults()
	res := OptionsResult{State: m.st.State}
	var bwErr error
	if in.BandwidthSchedule != nil {
		m.spec.Options.BWLimit = *in.BandwidthSchedule
		changed = append(changed, fmt.Sprintf("bandwidth schedule %q", m.spec.Options.BWLimit))
		if m.transferring() {
			var h *activities.Host
			var r activities.SetBandwidthResult
			// One bounded try, not onHost's wait for an offline agent: the
			// caller waits for the answer, and the next transfer starts
			// with the stored schedule anyway.
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				TaskQueue:              HostTaskQueue(m.spec.SourceHost),
				ScheduleToStartTimeout: min(m.spec.HostProbe, 10*time.Second),
				StartToCloseTimeout:    20 * time.Second,
				RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 2,
					NonRetryableErrorTypes: append(activities.NonRetryableErrorTypes(), activities.ErrTypeUnsupported)},
			})
			bwErr = workflow.ExecuteActivity(actx, h.SetBandwidth,
				activities.SetBandwidthInput{JobID: m.spec.JobID, Schedule: m.spec.Options.BWLimit}).Get(ctx, &r)
			res.BandwidthApplied = r.Applied
		}
	}
	msg := "options changed: " + strings.Join(changed, ", ")
	if res.BandwidthApplied {
		msg += " (the running transfer follows the new bandwidth schedule)"
	}
	if bwErr != nil {
		msg += fmt.Sprintf(" (the running transfer keeps its old bandwidth until its next start: %v)", bwErr)
	}
	m.event(ctx, ferry.JobEvent{Type: ferry.JobEventAction, Actor: in.Actor, Message: msg})
	if bwErr != nil {
		res.BandwidthError = bwErr.Error()
	}
	return res, nil
}

// transferring reports whether a mirror or sync activity may be sending
// from the source now.
func (m *migration) transferring() bool {
	switch m.st.State {
	case ferry.JobMirroring, ferry.JobSyncing, ferry.JobReadyForCutover, ferry.JobTestCutover:
		return true
	}
	return false
}
