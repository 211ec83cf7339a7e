package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferry-migrate/ferry/apiserver"
)

func newLoginCmd() *cobra.Command {
	var cf clientFlags
	var user string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to the control plane and save the session for the other client commands",
		Long: `Log in with a username and password. The server URL and the session token are
saved in ~/.config/ferry/credentials (mode 0600) for ferry hosts, ferry jobs and
the other client commands.

A built-in account must change its password at first login: on a terminal,
login asks for a new one.`,
		Example: "  ferry login --server http://127.0.0.1:8080 --username admin\n  echo \"$PW\" | ferry login --server https://ferry:8443 --ca-cert ca.pem -u admin --password-stdin",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := loadCredentials()
			if err != nil {
				return err
			}
			if cf.server == "" {
				cf.server = creds.Server
			}
			if cf.server == "" {
				return errors.New("--server is required at the first login")
			}
			c, err := newAPIClient(cf.server, "", cf.caCert, cf.insecure)
			if err != nil {
				return err
			}
			in := bufio.NewReader(cmd.InOrStdin())
			if user == "" {
				if user, err = prompt(cmd, in, "Username: ", false); err != nil {
					return err
				}
			}
			pw, err := prompt(cmd, in, "Password: ", !passwordStdin)
			if err != nil {
				return err
			}
			var sess apiserver.SessionBody
			if err := c.call(cmd.Context(), "POST", "/api/v1/auth/login", map[string]string{"username": user, "password": pw}, &sess); err != nil {
				return err
			}
			c.token = sess.Token
			if sess.MustChangePassword {
				if err := changePassword(cmd, c, in, pw, !passwordStdin); err != nil {
					return err
				}
			}
			saved := &credentials{Server: c.base, Token: sess.Token, User: user, Expires: sess.ExpiresAt,
				CACert: cf.caCert, Insecure: cf.insecure}
			if err := saveCredentials(saved); err != nil {
				return fmt.Errorf("save credentials: %w", err)
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), map[string]any{"server": c.base, "user": sess.User, "permissions": sess.Permissions, "expiresAt": sess.ExpiresAt})
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %s as %s (roles: %s) until %s.\n", c.base, user,
				strings.Join(sess.User.Roles, ", "), sess.ExpiresAt.Local().Format("2006-01-02 15:04"))
			return nil
		},
	}
	cf.add(cmd)
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name (asked when missing)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password (and a new one, if it must change) from standard input, one per line")
	return cmd
}

// changePassword asks for a new password twice and sets it.
func changePassword(cmd *cobra.Command, c *apiClient, in *bufio.Reader, current string, interactive bool) error {
	out := cmd.ErrOrStderr()
	fmt.Fprintln(out, "This account must change its password (at least 12 characters mixing 3 of: lowercase, uppercase, digits, symbols).")
	newPW, err := prompt(cmd, in, "New password: ", interactive)
	if err != nil {
		return err
	}
	if interactive {
		again, err := prompt(cmd, in, "Repeat the new password: ", true)
		if err != nil {
			return err
		}
		if again != newPW {
			return errors.New("the two passwords differ")
		}
	}
	return c.call(cmd.Context(), "POST", "/api/v1/auth/password", map[string]string{"currentPassword": current, "newPassword": newPW}, nil)
}

// prompt reads one line; secret lines are read without echo from a
// terminal.
func prompt(cmd *cobra.Command, in *bufio.Reader, label string, secret bool) (string, error) {
	if f, ok := cmd.InOrStdin().(*os.File); ok && secret && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), label)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), label)
	}
	line, err := in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read %s%w", strings.ToLower(strings.TrimSuffix(label, ": "))+": ", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newLogoutCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "End the saved session and forget its token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if err := c.call(ctx, "POST", "/api/v1/auth/logout", nil, nil); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err)
			}
			creds, err := loadCredentials()
			if err != nil {
				return err
			}
			creds.Token, creds.Expires = "", time.Time{}
			return saveCredentials(creds)
		},
	}
	cf.add(cmd)
	return cmd
}
