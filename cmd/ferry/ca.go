package main

import (
	"fmt"

	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/spf13/cobra"
)

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Manage the development certificate authority of the data channel",
	}
	var name string
	initCmd := &cobra.Command{
		Use:   "init CADIR",
		Short: "Create a certificate authority in CADIR (ca.crt and ca.key)",
		Long: `Create a certificate authority in CADIR for development and tests. Any
ferry agent or CLI command given --ca CADIR (with the CA key present) issues
its own certificate from it; peers with certificates from another CA are
refused. Production enrollment goes through the control plane.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pki.InitCA(args[0], name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "certificate authority %q created in %s\n", name, args[0])
			return nil
		},
	}
	initCmd.Flags().StringVar(&name, "name", "Ferry development CA", "common name of the CA")
	cmd.AddCommand(initCmd)
	return cmd
}
