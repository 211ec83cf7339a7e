// Package worker is the control-plane Temporal worker: it registers Ferry's
// workflows and the controller activities on the control task queue.
package worker

import (
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/workflows"
)

// Config holds the worker's dependencies.
type Config struct {
	Client     client.Client
	Controller *activities.Controller
	// TaskQueue defaults to workflows.ControlTaskQueue.
	TaskQueue string
}

// New returns a worker with every workflow and controller activity registered.
// It polls once Start or Run is called.
func New(cfg Config) (sdkworker.Worker, error) {
	if cfg.Client == nil || cfg.Controller == nil {
		return nil, fmt.Errorf("worker: client and controller are required")
	}
	tq := cfg.TaskQueue
	if tq == "" {
		tq = workflows.ControlTaskQueue
	}
	w := sdkworker.New(cfg.Client, tq, sdkworker.Options{})
	w.RegisterWorkflow(workflows.SelfTest)
	w.RegisterActivity(cfg.Controller)
	return w, nil
}
