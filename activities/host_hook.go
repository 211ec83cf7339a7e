package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Hook phases.
const (
	HookPreCutover  = "pre-cutover"  // on the source: stop services
	HookPostCutover = "post-cutover" // on the target: start services, checks
	HookShutdown    = "shutdown"     // on the source: shut it down
	HookTest        = "test-cutover" // on the target: bring up the test copy
)

// Hook is a command a job runs at a cutover step on one host. Command is an
// argv (no shell unless the user names one).
type Hook struct {
	Name        string        `json:"name"`
	Command     []string      `json:"command"`
	Timeout     time.Duration `json:"timeout,omitempty"` // zero means 5 minutes
	MustSucceed bool          `json:"mustSucceed,omitempty"`
}

// RunHookInput is one hook run.
type RunHookInput struct {
	JobID string
	Phase string
	Hook  Hook
	// Env is added to the hook's environment, e.g. FERRY_TARGET_PATH.
	Env map[string]string
}

// RunHookResult is how the hook ended. A hook that ran and failed is a
// result (OK false), not an activity error, so that the workflow applies the
// hook's must-succeed rule; hooks are never retried.
type RunHookResult struct {
	OK       bool          `json:"ok"`
	ExitCode int           `json:"exitCode"`
	Output   string        `json:"output,omitempty"` // the last 4 KiB of stdout and stderr
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
}

const hookOutputTail = 4 << 10

// RunHook runs a hook's command on this host with FERRY_JOB_ID,
// FERRY_HOOK_PHASE and in.Env in its environment, killing it after its
// timeout.
func (h *Host) RunHook(ctx context.Context, in RunHookInput) (RunHookResult, error) {
	if len(in.Hook.Command) == 0 {
		return RunHookResult{}, invalid("hook %q has no command", in.Hook.Name)
	}
	timeout := in.Hook.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hb := startHeartbeat(ctx, h.heartbeatEvery(), nil)
	defer hb.stop()

	cmd := exec.CommandContext(hctx, in.Hook.Command[0], in.Hook.Command[1:]...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "FERRY_JOB_ID="+in.JobID, "FERRY_HOOK_PHASE="+in.Phase)
	for k, v := range in.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := h.now()
	err := cmd.Run()
	res := RunHookResult{Duration: h.now().Sub(start), ExitCode: cmd.ProcessState.ExitCode()}
	if b := out.Bytes(); len(b) > hookOutputTail {
		res.Output = string(b[len(b)-hookOutputTail:])
	} else {
		res.Output = string(b)
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, ctx.Err()
	case hctx.Err() != nil:
		res.Error = fmt.Sprintf("timed out after %s", timeout)
	case errors.As(err, &exitErr):
		res.Error = fmt.Sprintf("exited with status %d", res.ExitCode)
	case err != nil:
		res.Error = err.Error()
	default:
		res.OK = true
	}
	return res, nil
}
