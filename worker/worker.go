// Package worker holds Ferry's Temporal workers: the control-plane worker
// (workflows and controller activities, run by `ferry worker`) and the host
// worker (host-bound activities, run by `ferry agent` on its host's queue).
package worker

import (
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/workflows"
)

// Config holds the control-plane worker's dependencies.
type Config struct {
	Client     client.Client
	Controller *activities.Controller
	// TaskQueue defaults to workflows.ControlTaskQueue.
	TaskQueue string
	// Options are passed to the SDK worker as they are.
	Options sdkworker.Options
}

// New returns the control-plane worker with every workflow and controller
// activity registered. It polls once Start or Run is called.
func New(cfg Config) (sdkworker.Worker, error) {
	if cfg.Client == nil || cfg.Controller == nil {
		return nil, fmt.Errorf("worker: client and controller are required")
	}
	tq := cfg.TaskQueue
	if tq == "" {
		tq = workflows.ControlTaskQueue
	}
	w := sdkworker.New(cfg.Client, tq, cfg.Options)
	RegisterWorkflows(w)
	w.RegisterActivity(cfg.Controller)
	return w, nil
}

// RegisterWorkflows registers every Ferry workflow on r (a worker or a
// replayer).
func RegisterWorkflows(r interface {
	RegisterWorkflow(any)
}) {
	r.RegisterWorkflow(workflows.SelfTest)
	r.RegisterWorkflow(workflows.MigrationWorkflow)
	r.RegisterWorkflow(workflows.WaveWorkflow)
	r.RegisterWorkflow(workflows.CompareWorkflow)
	r.RegisterWorkflow(workflows.RemoveJobDataWorkflow)
}
