package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry/activities"
)

// CompareWorkflow is one scheduled compare of a job (the "compare plan"):
// a full verify of the source tree against the replica, run on the source
// host, whose difference report is stored as a "compare" job event. The job
// workflow creates its Temporal Schedule while it syncs (JobSpec.CompareEvery)
// and deletes it at cutover and when the job ends.
func CompareWorkflow(ctx workflow.Context, spec activities.CompareSpec) (activities.VerifyReport, error) {
	wait := spec.HostWait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	vctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              HostTaskQueue(spec.SourceHost),
		ScheduleToStartTimeout: wait,
		StartToCloseTimeout:    24 * time.Hour,
		HeartbeatTimeout:       time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.NonRetryableErrorTypes(),
		},
	})
	var h *activities.Host
	var res activities.VerifyResult
	if err := workflow.ExecuteActivity(vctx, h.Verify, activities.VerifyInput{Request: spec.Request}).Get(ctx, &res); err != nil {
		return activities.VerifyReport{}, fmt.Errorf("compare %s: %w", spec.JobID, err)
	}
	var c *activities.Controller
	err := workflow.ExecuteActivity(controllerOptions(ctx), c.RecordCompare, activities.RecordCompareInput{
		JobID: spec.JobID, Time: workflow.Now(ctx), Report: res.Report,
	}).Get(ctx, nil)
	return res.Report, err
}

// ensureCompare creates the job's compare-plan schedule. A failure is
// recorded, not fatal: the compare plan is a report, not a step.
func (m *migration) ensureCompare(ctx workflow.Context) {
	var c *activities.Controller
	req := m.syncRequest()
	err := workflow.ExecuteActivity(controllerOptions(ctx), c.EnsureCompareSchedule, activities.EnsureCompareScheduleInput{
		Spec: activities.CompareSpec{
			JobID: m.spec.JobID, SourceHost: m.spec.SourceHost, TargetHost: m.spec.TargetHost,
			Request: activities.VerifyRequest(req), HostWait: m.spec.HostGracePeriod,
		},
		Every:     m.spec.CompareEvery,
		Workflow:  "CompareWorkflow",
		TaskQueue: workflow.GetInfo(ctx).TaskQueueName,
	}).Get(ctx, nil)
	if err != nil {
		m.st.LastError = "compare plan: " + err.Error()
		workflow.GetLogger(ctx).Warn("compare plan", "job", m.spec.JobID, "error", err)
	}
	// Marked even on failure so that a broken schedule client does not
	// retry every sync window; the error shows in the status.
	m.st.CompareScheduled = true
}

func (m *migration) deleteCompare(ctx workflow.Context) {
	var c *activities.Controller
	err := workflow.ExecuteActivity(controllerOptions(ctx), c.DeleteCompareSchedule, activities.DeleteCompareScheduleInput{JobID: m.spec.JobID}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("delete compare plan", "job", m.spec.JobID, "error", err)
	}
	m.st.CompareScheduled = false
}
