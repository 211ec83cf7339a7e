package workflows

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// hostCall is how one host-bound activity is run.
type hostCall struct {
	host         string
	startToClose time.Duration
	heartbeat    time.Duration
	retry        *temporal.RetryPolicy
}

// longCall is for activities that heartbeat and resume when retried.
func (m *migration) longCall(host string, startToClose time.Duration) hostCall {
	return hostCall{
		host:         host,
		startToClose: startToClose,
		heartbeat:    m.spec.HeartbeatTimeout,
		retry: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        20,
			NonRetryableErrorTypes: activities.NonRetryableErrorTypes(),
		},
	}
}

// shortCall is for quick, idempotent host steps.
func (m *migration) shortCall(host string) hostCall {
	return hostCall{
		host:         host,
		startToClose: 5 * time.Minute,
		retry: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: activities.NonRetryableErrorTypes(),
		},
	}
}

// onHost runs a host-bound activity on the host's task queue. When the
// host's agent does not pick it up within the job's probe time, the job
// shows that it waits for the host and tries again, until the agent returns
// or the grace period is over (then a non-retryable HostOffline error).
func (m *migration) onHost(ctx workflow.Context, c hostCall, activity, in, out any) error {
	for {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              HostTaskQueue(c.host),
			ScheduleToStartTimeout: m.spec.HostProbe,
			StartToCloseTimeout:    c.startToClose,
			HeartbeatTimeout:       c.heartbeat,
			RetryPolicy:            c.retry,
			WaitForCancellation:    true,
		})
		err := workflow.ExecuteActivity(actx, activity, in).Get(ctx, out)
		if isScheduleToStartTimeout(err) && ctx.Err() == nil {
			if err := m.hostAway(ctx, c.host); err != nil {
				return err
			}
			continue
		}
		if err == nil || !isCanceled(err) {
			m.hostBack(ctx, c.host)
		}
		return err
	}
}

func isScheduleToStartTimeout(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

func isCanceled(err error) bool {
	var ce *temporal.CanceledError
	return errors.As(err, &ce)
}

// runHook runs one hook on host and records its outcome; an activity error
// (the agent died mid-hook, the timeout passed) is a failed hook.
func (m *migration) runHook(ctx workflow.Context, host, phase string, hook activities.Hook) activities.RunHookResult {
	var h *activities.Host
	timeout := hook.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	c := hostCall{host: host, startToClose: timeout + time.Minute, heartbeat: m.spec.HeartbeatTimeout,
		retry: &temporal.RetryPolicy{MaximumAttempts: 1}}
	in := activities.RunHookInput{JobID: m.spec.JobID, Phase: phase, Hook: hook, Env: map[string]string{
		"FERRY_SOURCE_PATH": m.spec.SourcePath,
		"FERRY_TARGET_PATH": m.spec.TargetPath,
		"FERRY_TEST_PATH":   m.st.TestPath,
	}}
	var res activities.RunHookResult
	if err := m.onHost(ctx, c, h.RunHook, in, &res); err != nil {
		res = activities.RunHookResult{Error: err.Error()}
	}
	m.st.Hooks = append(m.st.Hooks, HookRun{Phase: phase, Name: hook.Name, Host: host, Result: res})
	msg := phase + " hook " + hook.Name + ": ok"
	if !res.OK {
		msg = phase + " hook " + hook.Name + ": failed: " + res.Error
	}
	m.eventDetails(ctx, ferry.JobEventHook, msg, res)
	return res
}
