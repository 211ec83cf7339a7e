package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferry-migrate/ferry"
)

// JobEventStore is where the controller writes job events.
type JobEventStore interface {
	// AppendJobEvent appends e and sets e.ID. Returns EINVALID when e does
	// not validate and ENOTFOUND when its job does not exist.
	AppendJobEvent(ctx context.Context, e *ferry.JobEvent) error
}

// JobStateStore keeps each job's last state for lists and reports
// (*store.DB satisfies it).
type JobStateStore interface {
	// SetJobState records the job's new state and appends the matching
	// state event in one transaction, returning the event. Returns ENOTFOUND
	// when the job does not exist.
	SetJobState(ctx context.Context, id string, to ferry.JobState, reason, actor string) (*ferry.JobEvent, error)
}

// ScheduleClient is the part of Temporal's schedule client the controller
// uses (client.Client.ScheduleClient() satisfies it).
type ScheduleClient interface {
	Create(ctx context.Context, options client.ScheduleOptions) (client.ScheduleHandle, error)
	GetHandle(ctx context.Context, scheduleID string) client.ScheduleHandle
}

// RecordJobEventInput is one job event. Time is when it happened in the
// workflow; the store assigns the ID.
type RecordJobEventInput struct {
	Event ferry.JobEvent
	// Details, when not nil, becomes Event.Details as JSON (workflows cannot
	// marshal JSON themselves).
	Details any
}

// RecordJobEventResult is the stored event's ID.
type RecordJobEventResult struct {
	ID int64
}

// RecordJobEvent appends a job event; a state change goes through
// JobStates.SetJobState, which records the job's new state and its event
// together. A job unknown to the database (ENOTFOUND) or an invalid
// event is a non-retryable error; anything else is retried.
func (c *Controller) RecordJobEvent(ctx context.Context, in RecordJobEventInput) (RecordJobEventResult, error) {
	e := in.Event
	if in.Details != nil {
		b, err := json.Marshal(in.Details)
		if err != nil {
			return RecordJobEventResult{}, temporal.NewNonRetryableApplicationError("job event details: "+err.Error(), ErrTypeInvalidRequest, err)
		}
		e.Details = b
	}
	if e.Time.IsZero() {
		e.Time = c.now()
	}
	if e.Type == ferry.JobEventState && e.ToState != "" && c.JobStates != nil {
		ev, err := c.JobStates.SetJobState(ctx, e.JobID, e.ToState, e.Message, e.Actor)
		if err != nil {
			return RecordJobEventResult{}, storeErr("set job state", err)
		}
		return RecordJobEventResult{ID: ev.ID}, nil
	}
	if c.Events == nil {
		activity.GetLogger(ctx).Info("job event (no store)", "job", e.JobID, "type", e.Type, "message", e.Message)
		return RecordJobEventResult{}, nil
	}
	if err := c.Events.AppendJobEvent(ctx, &e); err != nil {
		return RecordJobEventResult{}, storeErr("append job event", err)
	}
	return RecordJobEventResult{ID: e.ID}, nil
}

func storeErr(op string, err error) error {
	switch ferry.ErrorCode(err) {
	case ferry.EINVALID, ferry.ENOTFOUND:
		return temporal.NewNonRetryableApplicationError(op+": "+ferry.ErrorMessage(err), ErrTypeInvalidRequest, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// CompareSpec is what a scheduled compare ("compare plan") compares; it is
// the input of workflows.CompareWorkflow.
type CompareSpec struct {
	JobID      string
	SourceHost string
	TargetHost string
	Request    VerifyRequest
	// HostWait bounds how long a compare waits for an offline agent.
	HostWait time.Duration
}

// CompareScheduleID is the ID of a job's compare-plan schedule.
func CompareScheduleID(jobID string) string { return "compare-" + jobID }

// EnsureCompareScheduleInput creates or replaces a job's compare plan.
type EnsureCompareScheduleInput struct {
	Spec      CompareSpec
	Every     time.Duration
	Workflow  string // workflow type name, "CompareWorkflow"
	TaskQueue string
}

// EnsureCompareScheduleResult names the schedule.
type EnsureCompareScheduleResult struct {
	ScheduleID string
}

// EnsureCompareSchedule creates the job's compare-plan Temporal Schedule,
// replacing one left from an earlier run. Returns a non-retryable error when
// the controller has no schedule client.
func (c *Controller) EnsureCompareSchedule(ctx context.Context, in EnsureCompareScheduleInput) (EnsureCompareScheduleResult, error) {
	if c.Schedules == nil {
		return EnsureCompareScheduleResult{}, temporal.NewNonRetryableApplicationError("controller has no schedule client", ErrTypeInvalidRequest, nil)
	}
	id := CompareScheduleID(in.Spec.JobID)
	if err := c.deleteSchedule(ctx, id); err != nil {
		return EnsureCompareScheduleResult{}, err
	}
	_, err := c.Schedules.Create(ctx, client.ScheduleOptions{
		ID:      id,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: in.Every}}},
		Overlap: 0, // skip a compare while the previous one still runs
		Action: &client.ScheduleWorkflowAction{
			ID:        "compare-" + in.Spec.JobID,
			Workflow:  in.Workflow,
			Args:      []any{in.Spec},
			TaskQueue: in.TaskQueue,
		},
	})
	if err != nil {
		return EnsureCompareScheduleResult{}, fmt.Errorf("create schedule %s: %w", id, err)
	}
	return EnsureCompareScheduleResult{ScheduleID: id}, nil
}

// DeleteCompareScheduleInput names the job whose compare plan ends.
type DeleteCompareScheduleInput struct {
	JobID string
}

// DeleteCompareScheduleResult is empty.
type DeleteCompareScheduleResult struct{}

// DeleteCompareSchedule deletes a job's compare plan; a missing one is fine.
func (c *Controller) DeleteCompareSchedule(ctx context.Context, in DeleteCompareScheduleInput) (DeleteCompareScheduleResult, error) {
	if c.Schedules == nil {
		return DeleteCompareScheduleResult{}, nil
	}
	return DeleteCompareScheduleResult{}, c.deleteSchedule(ctx, CompareScheduleID(in.JobID))
}

func (c *Controller) deleteSchedule(ctx context.Context, id string) error {
	err := c.Schedules.GetHandle(ctx, id).Delete(ctx)
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}

// RecordCompareInput is a finished compare's report.
type RecordCompareInput struct {
	JobID  string
	Time   time.Time
	Report VerifyReport
}

// RecordCompareResult is the stored event's ID.
type RecordCompareResult struct {
	ID int64
}

// RecordCompare stores a compare's difference report as a "compare" job
// event.
func (c *Controller) RecordCompare(ctx context.Context, in RecordCompareInput) (RecordCompareResult, error) {
	msg := "compare: identical"
	if !in.Report.Identical {
		msg = fmt.Sprintf("compare: %d differences", in.Report.Count)
	}
	r, err := c.RecordJobEvent(ctx, RecordJobEventInput{Event: ferry.JobEvent{
		JobID: in.JobID, Time: in.Time, Type: ferry.JobEventCompare, Actor: "system", Message: msg,
	}, Details: in.Report})
	return RecordCompareResult{ID: r.ID}, err
}
