package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
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
	var description, caOut string
	token := &cobra.Command{
		Use:   "enroll-token",
		Short: "Create a one-time token that lets one agent register its host",
		Long: "Create a one-time enrollment token and print the command to run on the new host, with the control " +
			"plane's CA certificate (which the agent trusts for enrollment) and its SHA-256 fingerprint: compare the " +
			"fingerprint with the server's before trusting a copied certificate.",
		Args: cobra.NoArgs,
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
			ca, err := fetchCA(cmd.Context(), c)
			if err != nil {
				return err
			}
			caFile := caOut
			if caFile == "" {
				caFile = "ferry-ca.crt"
			} else if err := os.WriteFile(caOut, ca.PEM, 0o644); err != nil {
				return fmt.Errorf("write the CA certificate: %w", err)
			}
			command := agentCommand(c.base, out.Body.Token, caFile)
			if cf.json {
				printJSON(cmd.OutOrStdout(), map[string]any{"token": out.Body.Token, "enrollmentToken": out.Body.Info,
					"caCertificate": string(ca.PEM), "caSha256": ca.Fingerprint, "caFile": caOut, "agentCommand": command})
				return nil
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Enrollment token (valid until %s, usable once):\n\n  %s\n\n",
				out.Body.Info.ExpiresAt.Local().Format("2006-01-02 15:04"), out.Body.Token)
			if caOut != "" {
				fmt.Fprintf(w, "CA certificate written to %s; copy it to the new host.\n", caOut)
			} else {
				fmt.Fprintf(w, "CA certificate (save it as %s on the new host):\n\n%s\n", caFile, ca.PEM)
			}
			fmt.Fprintf(w, "CA SHA-256 fingerprint: %s\n\nOn the new host run:\n\n  %s\n", ca.Fingerprint, command)
			return nil
		},
	}
	token.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token stays valid (at most 720h)")
	token.Flags().StringVar(&description, "description", "", "what the token is for")
	token.Flags().StringVar(&caOut, "ca-out", "", "also write the control plane's CA certificate to this file")

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

// caCert is the control plane's CA certificate as the CLI fetched it.
type caCert struct {
	PEM         []byte
	Fingerprint string // SHA-256 of the DER bytes, computed here
}

// fetchCA gets the CA certificate from GET /api/v1/ca.crt and computes its
// fingerprint itself. Returns an error when the answer is no PEM
// certificate or the server's fingerprint header disagrees.
func fetchCA(ctx context.Context, c *apiClient) (*caCert, error) {
	resp, err := c.request(ctx, "GET", "/api/v1/ca.crt", nil)
	if err != nil {
		return nil, fmt.Errorf("fetch the CA certificate: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch the CA certificate: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("the server's /api/v1/ca.crt is not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, fmt.Errorf("the server's CA certificate: %w", err)
	}
	fp := apiserver.CAFingerprint(blk.Bytes)
	if h := resp.Header.Get("X-Ferry-CA-SHA256"); h != "" && h != fp {
		return nil, fmt.Errorf("the CA certificate's fingerprint %s differs from the server's header %s", fp, h)
	}
	return &caCert{PEM: pem.EncodeToMemory(blk), Fingerprint: fp}, nil
}

// agentCommand is the command that enrolls a new host's agent.
func agentCommand(server, token, caFile string) string {
	return "ferry agent --enroll " + shellQuote(server) + " --token " + shellQuote(token) + " --ca-cert " + shellQuote(caFile) +
		" --data-dir /var/lib/ferry"
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
