package main

import (
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/spf13/cobra"
)

func newVerifyCmd() *cobra.Command {
	var tf transferFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Compare two trees (content and all metadata) through their agents",
		Long: `Compare the trees at --from and --to: each agent hashes its own files, only
hashes and metadata cross the wire. Prints every difference (missing, extra,
type, content, size, mode, owner, mtime, xattrs, acl, target, rdev,
hardlink). Exit status 0 only when the trees are identical, 1 when they
differ or the comparison failed.

--compress, --encrypt and --key-file are accepted and checked as mirror
checks them (each agent refuses a bad option or a short key the same way);
the manifests themselves hold only hashes and metadata and travel inside
the agents' mutually authenticated TLS connections.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctl, from, to, err := tf.controller()
			if err != nil {
				return err
			}
			opts := mirror.Options{Excludes: tf.excludes, Profile: tf.profile, Mounts: tf.mounts}
			if err := tf.payload(&opts); err != nil {
				return err
			}
			if err := mirror.Normalize(&opts); err != nil {
				return err
			}
			diffs, err := ctl.Verify(cmd.Context(), from, to, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if tf.json {
				if diffs == nil {
					diffs = []mirror.Difference{}
				}
				printJSON(out, map[string]any{"identical": len(diffs) == 0, "differences": diffs})
			} else {
				for _, d := range diffs {
					kinds := make([]string, len(d.Kinds))
					for i, k := range d.Kinds {
						kinds[i] = string(k)
					}
					p := d.Path
					if p == "" {
						p = "."
					}
					line := fmt.Sprintf("%-24s %q", strings.Join(kinds, ","), p)
					if d.Detail != "" {
						line += "  (" + d.Detail + ")"
					}
					fmt.Fprintln(out, line)
				}
				if len(diffs) == 0 {
					fmt.Fprintln(out, "identical")
				}
			}
			if len(diffs) > 0 {
				return exitError{code: 1, msg: fmt.Sprintf("%d differences", len(diffs))}
			}
			return nil
		},
	}
	tf.add(cmd)
	return cmd
}
