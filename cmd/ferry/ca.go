package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newCACmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ca",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("ferry ca: not implemented yet")
		},
	}
}
