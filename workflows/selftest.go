package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry/activities"
)

// SelfTestInput names who asked for the self-test.
type SelfTestInput struct {
	RequestedBy string
}

// SelfTestResult is what the self-test wrote.
type SelfTestResult struct {
	Key   string
	Value string
}

// SelfTest proves the control plane end to end: Temporal schedules the
// workflow on a `ferry worker`, whose controller activity writes a row through
// the store. `ferry worker --self-test` and the readiness checks use it.
func SelfTest(ctx workflow.Context, in SelfTestInput) (SelfTestResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	info := workflow.GetInfo(ctx)
	var c *activities.Controller
	var out activities.RecordSelfTestResult
	err := workflow.ExecuteActivity(ctx, c.RecordSelfTest, activities.RecordSelfTestInput{
		WorkflowID:  info.WorkflowExecution.ID,
		RequestedBy: in.RequestedBy,
	}).Get(ctx, &out)
	if err != nil {
		return SelfTestResult{}, err
	}
	return SelfTestResult{Key: out.Key, Value: out.Value}, nil
}
