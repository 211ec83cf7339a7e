package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("ferry worker: not implemented yet")
		},
	}
}
