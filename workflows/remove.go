package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry/activities"
)

// RemoveJobDataInput names a removed job's data on its target host.
type RemoveJobDataInput struct {
	JobID      string
	TargetHost string
	TargetPath string
	// HostWait bounds how long it waits for the target's agent (10 min).
	HostWait time.Duration
}

// RemoveJobDataWorkflow deletes a removed job's staging directory on the
// target host (replica, previous contents, test copy); the live target path
// stays as it is. The API runs it after cancelling the job's workflow when
// the user removes a job with its data. Fails when the target's agent does
// not answer within HostWait.
func RemoveJobDataWorkflow(ctx workflow.Context, in RemoveJobDataInput) (activities.DiscardJobResult, error) {
	wait := in.HostWait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              HostTaskQueue(in.TargetHost),
		ScheduleToStartTimeout: wait,
		StartToCloseTimeout:    time.Hour,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.NonRetryableErrorTypes(),
		},
	})
	var h *activities.Host
	var res activities.DiscardJobResult
	err := workflow.ExecuteActivity(ctx, h.DiscardJob, activities.DiscardJobInput{JobID: in.JobID, TargetPath: in.TargetPath}).Get(ctx, &res)
	if err != nil {
		return res, fmt.Errorf("remove data of job %s on host %s: %w", in.JobID, in.TargetHost, err)
	}
	return res, nil
}
