// Command ferry is Ferry's single binary: the control-plane server and worker,
// the per-host agent, the all-in-one dev mode, and the CLI client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "ferry:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a specific status (for example 1 from
// `ferry verify` when the trees differ) without being reported as a failure
// of the command itself.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return fmt.Sprintf("exit status %d: %s", e.code, e.msg) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Ferry moves a running server to another machine without stopping it",
		Long: `Ferry moves a running server - its whole file tree or its disks - to another
machine without stopping it. Agents on the source and target hosts mirror the
data, keep it in sync in real time, verify it, and cut over. A control plane
orchestrates every step durably on Temporal.

Daemons:
  ferry server   the control-plane API server and web UI
  ferry worker   the control-plane Temporal worker
  ferry agent    the per-host agent (data plane and host activities)
  ferry dev      everything on one machine, on the embedded defaults

Client of the control plane:
  ferry login, ferry hosts ..., ferry jobs ...

Direct agent-to-agent operations (no control plane needed):
  ferry ca init, ferry mirror, ferry verify, ferry sync

Every flag can also be set through an environment variable named FERRY_ and the
flag name in upper case with dashes as underscores (--database-dsn is
FERRY_DATABASE_DSN). Flags win over the environment.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addLogFlags(root)
	root.AddCommand(
		newServerCmd(),
		newWorkerCmd(),
		newAgentCmd(),
		newDevCmd(),
		newCACmd(),
		newMirrorCmd(),
		newVerifyCmd(),
		newSyncCmd(),
		newLoginCmd(),
		newLogoutCmd(),
		newHostsCmd(),
		newJobsCmd(),
	)
	annotateAll(root)
	return root
}

// annotateAll appends its FERRY_* variable to every flag's help text.
func annotateAll(c *cobra.Command) {
	annotateEnv(c)
	for _, sub := range c.Commands() {
		annotateAll(sub)
	}
}
