package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newMirrorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mirror",
		Short: "not implemented yet",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("ferry mirror: not implemented yet")
		},
	}
}
