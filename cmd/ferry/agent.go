package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/spf13/cobra"
)

func newAgentCmd() *cobra.Command {
	var listen, dataDir, caDir string
	var ckpt int64
	var ctl agentControlOptions
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the per-host agent (data channel over mutual TLS 1.3)",
		Long: `Run the per-host agent. It serves the data channel on --listen over mutually
authenticated TLS 1.3 and keeps job checkpoints under --data-dir. With
--ca CADIR holding a CA key (ferry ca init), the agent issues itself a
certificate into DATADIR/identity; peers need a certificate from the same CA.

Under a control plane, the first start enrolls the host:

  ferry agent --enroll https://CONTROL:8443 --token TOKEN --ca-cert ca.crt --data-dir DIR

The certificate the control plane's CA issues, the host ID and the server URL
are kept in DATADIR/enrollment; later starts need only --data-dir. The agent
then serves the data channel with that certificate, polls the host's Temporal
task queue (--temporal-address, default: the enrollment URL's host, port
7233) and heartbeats facts and metrics to the control plane. Other agents
reach its data channel on --advertise. A revoked host's agent stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caDir == "" {
				ctl.listen, ctl.dataDir, ctl.checkpointBytes = listen, dataDir, ckpt
				return runControlledAgent(cmd.Context(), ctl, slog.Default(), cmd.OutOrStdout())
			}
			if dataDir == "" {
				return errors.New("--data-dir is required")
			}
			host, _ := os.Hostname()
			sans := []string{host}
			if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
				sans = append(sans, h)
			}
			id, err := pki.LoadOrIssue(caDir, filepath.Join(dataDir, "identity"), "ferry-agent "+host, sans)
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Config{Listen: listen, DataDir: dataDir,
				ServerTLS: id.ServerTLS(), ClientTLS: id.ClientTLS(), CheckpointBytes: ckpt})
			if err != nil {
				return err
			}
			// Scripts and tests read the bound address from stdout.
			fmt.Fprintln(cmd.OutOrStdout(), "listening on "+a.Addr().String())
			return a.Serve(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":7780", "TCP address to serve the data channel on")
	f.StringVar(&dataDir, "data-dir", "", "directory for checkpoints and the agent's identity")
	f.StringVar(&caDir, "ca", "", "certificate authority directory (ferry ca init)")
	f.Int64Var(&ckpt, "checkpoint-bytes", 0, "make large files durable every N bytes (0: default 64 MiB)")
	f.MarkHidden("checkpoint-bytes")
	ctl.addFlags(f)
	return cmd
}
