package activities

import (
	"strings"
	"testing"
	"time"
)

func runHook(t *testing.T, in RunHookInput) RunHookResult {
	t.Helper()
	h := &Host{ID: "src", HeartbeatEvery: 50 * time.Millisecond}
	v, err := actEnv(h).ExecuteActivity(h.RunHook, in)
	if err != nil {
		t.Fatal(err)
	}
	var r RunHookResult
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunHook(t *testing.T) {
	r := runHook(t, RunHookInput{JobID: "j1", Phase: HookPostCutover, Env: map[string]string{"FERRY_TARGET_PATH": "/srv/x"},
		Hook: Hook{Name: "env", Command: []string{"sh", "-c", `echo "$FERRY_JOB_ID $FERRY_HOOK_PHASE $FERRY_TARGET_PATH"`}}})
	if !r.OK || r.ExitCode != 0 || strings.TrimSpace(r.Output) != "j1 post-cutover /srv/x" {
		t.Fatalf("%+v", r)
	}
	r = runHook(t, RunHookInput{JobID: "j1", Phase: HookPreCutover, Hook: Hook{Name: "fail", Command: []string{"sh", "-c", "echo boom >&2; exit 3"}}})
	if r.OK || r.ExitCode != 3 || !strings.Contains(r.Output, "boom") || !strings.Contains(r.Error, "status 3") {
		t.Fatalf("%+v", r)
	}
	r = runHook(t, RunHookInput{JobID: "j1", Phase: HookPreCutover, Hook: Hook{Name: "slow", Command: []string{"sleep", "10"}, Timeout: 200 * time.Millisecond}})
	if r.OK || !strings.Contains(r.Error, "timed out") || r.Duration > 5*time.Second {
		t.Fatalf("%+v", r)
	}
	r = runHook(t, RunHookInput{JobID: "j1", Phase: HookPreCutover, Hook: Hook{Name: "missing", Command: []string{"/nonexistent/cmd"}}})
	if r.OK || r.Error == "" {
		t.Fatalf("%+v", r)
	}
}
