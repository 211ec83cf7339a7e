package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDevCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("ferry dev: not implemented yet")
		},
	}
}
