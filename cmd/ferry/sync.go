package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSyncCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sync",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("ferry sync: not implemented yet")
		},
	}
}
