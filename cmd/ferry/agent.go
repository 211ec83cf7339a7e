package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("ferry agent: not implemented yet")
		},
	}
}
