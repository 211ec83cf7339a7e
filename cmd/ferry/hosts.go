package main

import (
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/apiserver"
)

func newHostsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List hosts, create enrollment tokens, revoke hosts",
	}
	cf.add(cmd)

	var query string
	var revoked string
	var limit, offset int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the enrolled hosts and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if query != "" {
				q.Set("q", query)
			}
			if revoked != "" {
				q.Set("revoked", revoked)
			}
			q.Set("limit", strconv.Itoa(limit))
			q.Set("offset", strconv.Itoa(offset))
			var out apiserver.HostListOutput
			if err := c.call(cmd.Context(), "GET", "/api/v1/hosts?"+q.Encode(), nil, &out.Body); err != nil {
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), out.Body)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tOS\tARCH\tCPUS\tMEMORY\tAGENT\tLAST SEEN")
			for _, h := range out.Body.Items {
				seen := "never"
				if !h.LastSeenAt.IsZero() {
					seen = time.Since(h.LastSeenAt).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", h.ID, h.Name, h.Status, h.Platform+" "+h.OS, h.Arch,
					h.CPUs, humanBytes(h.MemoryBytes), h.AgentVersion, seen)
			}
			tw.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "%d of %d hosts\n", len(out.Body.Items), out.Body.Total)
			return nil
		},
	}
	list.Flags().StringVar(&query, "query", "", "only hosts whose name or hostname contains this")
	list.Flags().StringVar(&revoked, "revoked", "", "true: only revoked hosts; false: only active ones")
	list.Flags().IntVar(&limit, "limit", 100, "page size (at most 1000)")
	list.Flags().IntVar(&offset, "offset", 0, "hosts to skip")

	var ttl time.Duration
	var description string
	token := &cobra.Command{
		Use:   "enroll-token",
		Short: "Create a one-time token that lets one agent register its host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out apiserver.CreateEnrollmentTokenOutput
			in := map[string]any{"description": description, "ttlSeconds": int(ttl / time.Second)}
			if err := c.call(cmd.Context(), "POST", "/api/v1/hosts/enrollment-tokens", in, &out.Body); err != nil {
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), out.Body)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Enrollment token (valid until %s, usable once):\n\n  %s\n\nOn the new host run:\n\n  ferry agent --enroll %s --token %s --data-dir /var/lib/ferry\n",
				out.Body.Info.ExpiresAt.Local().Format("2006-01-02 15:04"), out.Body.Token, c.base, out.Body.Token)
			return nil
		},
	}
	token.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token stays valid (at most 720h)")
	token.Flags().StringVar(&description, "description", "", "what the token is for")

	get := &cobra.Command{
		Use:   "get HOST_ID",
		Short: "Show one host with its facts and last metrics",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var h apiserver.HostView
			if err := c.call(cmd.Context(), "GET", "/api/v1/hosts/"+url.PathEscape(args[0]), nil, &h); err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), h)
			return nil
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke HOST_ID",
		Short: "Revoke a host: its certificate is refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var h apiserver.HostView
			if err := c.call(cmd.Context(), "POST", "/api/v1/hosts/"+url.PathEscape(args[0])+"/revoke", nil, &h); err != nil {
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), h)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Host %s (%s) revoked at %s.\n", h.ID, h.Name, h.RevokedAt.Local().Format(time.RFC3339))
			return nil
		},
	}
	cmd.AddCommand(list, token, get, revoke)
	return cmd
}
