package workflows

// This file is client-side code (the API server uses it), not workflow code.

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/ferry-migrate/ferry/activities"
)

// JobStatus answers a job's status query and overlays the live progress of
// the activity the job is running (mirror or sync), taken from its latest
// heartbeat, so that callers see bytes, files, rate, ETA, lag and backlog
// between the workflow's own updates. Returns the query's error (a
// serviceerror.NotFound when there is no such job).
func JobStatus(ctx context.Context, c client.Client, jobID string) (Status, error) {
	v, err := c.QueryWorkflow(ctx, jobID, "", QueryStatus)
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := v.Get(&st); err != nil {
		return Status{}, fmt.Errorf("job %s status: %w", jobID, err)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, jobID, "")
	if err != nil {
		return st, nil // the query answered; live progress is a bonus
	}
	dc := converter.GetDefaultDataConverter()
	for _, pa := range desc.PendingActivities {
		if pa.HeartbeatDetails == nil {
			continue
		}
		switch pa.ActivityType.GetName() {
		case "Mirror":
			var p activities.MirrorProgress
			if dc.FromPayloads(pa.HeartbeatDetails, &p) != nil {
				continue
			}
			pr := &st.Progress
			pr.FilesDone, pr.FilesTotal, pr.BytesDone, pr.BytesTotal = p.FilesDone, p.FilesTotal, p.BytesDone, p.BytesTotal
			if started := pa.LastStartedTime.AsTime(); !started.IsZero() && pa.LastHeartbeatTime != nil {
				if d := pa.LastHeartbeatTime.AsTime().Sub(started).Seconds(); d > 0 {
					pr.RateBytes = float64(p.BytesDone) / d
				}
			}
			pr.ETA = 0
			if p.ScanDone && pr.RateBytes > 0 && p.BytesTotal > p.BytesDone {
				pr.ETA = time.Duration(float64(p.BytesTotal-p.BytesDone) / pr.RateBytes * float64(time.Second))
			}
		case "Sync", "FinalSync":
			var s activities.SyncStats
			if dc.FromPayloads(pa.HeartbeatDetails, &s) != nil {
				continue
			}
			pr := &st.Progress
			pr.LagMillis, pr.BacklogRecords, pr.BacklogBytes = s.LagMillis, s.BacklogRecords, s.BacklogBytes
			pr.AppliedTotal, pr.RateBytes, pr.AppliedRate = s.AppliedTotal, s.RateBytes, s.RateRecords
			pr.BytesSent = st.MirrorBytesSent + st.SyncBytesSent + s.BytesSent
		}
	}
	return st, nil
}
