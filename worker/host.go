package worker

import (
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/workflows"
)

// NewHost returns the worker of one host's agent: it polls the host's task
// queue (workflows.HostTaskQueue(host.ID)) and runs the host-bound activities
// of every job that involves the host. opts may be zero.
//
// Cancellation reaches a long activity only through its heartbeats, so the
// agent must let activities finish their heartbeat (the SDK default
// WorkerStopTimeout of zero drops them at once; an agent that stops cleanly
// should set it to a few seconds).
func NewHost(c client.Client, host *activities.Host, opts sdkworker.Options) (sdkworker.Worker, error) {
	if c == nil || host == nil || host.ID == "" {
		return nil, fmt.Errorf("host worker: client and host with an ID are required")
	}
	w := sdkworker.New(c, workflows.HostTaskQueue(host.ID), opts)
	w.RegisterActivity(host)
	return w, nil
}
