package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry/workflows"
)

// TestReplayRecordedHistories replays every history recorded from the real
// Temporal dev server (integration/jobs with FERRY_RECORD_HISTORY=1)
// against the current workflow code: a change that is not deterministic
// for a running job fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.MigrationWorkflow)
			r.RegisterWorkflow(workflows.WaveWorkflow)
			r.RegisterWorkflow(workflows.CompareWorkflow)
			r.RegisterWorkflow(workflows.RemoveJobDataWorkflow)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReplayDetectsChangedWorkflow proves the replay test can fail: a
// workflow that schedules different commands does not replay the history.
func TestReplayDetectsChangedWorkflow(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	changed := func(ctx workflow.Context, in workflows.MigrationInput) (workflows.MigrationResult, error) {
		return workflows.MigrationResult{}, workflow.Sleep(ctx, 1)
	}
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: "MigrationWorkflow"})
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", "job_to_cutover_complete.json")); err == nil {
		t.Fatal("a changed workflow replayed the recorded history")
	}
}
