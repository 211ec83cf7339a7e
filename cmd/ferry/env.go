package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the environment variable that sets a flag: FERRY_ and the flag
// name in upper case with dashes as underscores.
func envName(flag string) string {
	return "FERRY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of cmd that was not given on the command line from
// its FERRY_* environment variable. The error names the variable and the flag.
func applyEnv(cmd *cobra.Command) error {
	var first error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if first != nil || f.Changed || f.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			first = fmt.Errorf("invalid %s (--%s): %v", envName(f.Name), f.Name, err)
		}
	})
	return first
}

// annotateEnv appends the environment variable to every flag's help text.
func annotateEnv(cmd *cobra.Command) {
	note := func(f *pflag.Flag) {
		if f.Name == "help" || strings.Contains(f.Usage, "$FERRY_") {
			return
		}
		f.Usage += " ($" + envName(f.Name) + ")"
	}
	cmd.LocalFlags().VisitAll(note)
	cmd.PersistentFlags().VisitAll(note)
}
