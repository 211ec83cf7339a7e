package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/apiserver"
)

// credentials is what `ferry login` keeps in ~/.config/ferry/credentials.
type credentials struct {
	Server   string    `json:"server"`
	Token    string    `json:"token"`
	User     string    `json:"user,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	CACert   string    `json:"caCert,omitempty"`   // PEM file to trust for HTTPS
	Insecure bool      `json:"insecure,omitempty"` // skip HTTPS verification (dev only)
}

// credentialsPath is $XDG_CONFIG_HOME/ferry/credentials (~/.config/…).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locate the configuration directory: %w", err)
	}
	return filepath.Join(dir, "ferry", "credentials"), nil
}

func loadCredentials() (*credentials, error) {
	path, err := credentialsPath()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &credentials{}, nil
	} else if err != nil {
		return nil, err
	}
	var c credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// saveCredentials writes the file with mode 0600 (its directory 0700),
// through a temporary file renamed into place.
func saveCredentials(c *credentials) error {
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// clientFlags are the connection flags of every client command.
type clientFlags struct {
	server   string
	token    string
	caCert   string
	insecure bool
	json     bool
}

func (f *clientFlags) add(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.server, "server", "", "control-plane URL (default: the one saved by ferry login)")
	fs.StringVar(&f.token, "token", "", "bearer token: a session or personal API token (default: the saved one)")
	fs.StringVar(&f.caCert, "ca-cert", "", "PEM file of the CA that signed the server's HTTPS certificate")
	fs.BoolVar(&f.insecure, "insecure-skip-verify", false, "do not verify the server's HTTPS certificate (development only)")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text")
}

// apiClient talks to the control plane's API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// client builds the API client from the flags and the saved credentials;
// flags win.
func (f *clientFlags) client() (*apiClient, error) {
	c, err := loadCredentials()
	if err != nil {
		return nil, err
	}
	server, token, ca, insecure := c.Server, c.Token, c.CACert, c.Insecure
	if f.server != "" {
		server = f.server
		if f.token == "" && strings.TrimRight(f.server, "/") != strings.TrimRight(c.Server, "/") {
			token = "" // never send a saved token to another server
		}
	}
	if f.token != "" {
		token = f.token
	}
	if f.caCert != "" {
		ca = f.caCert
	}
	insecure = insecure || f.insecure
	if server == "" {
		return nil, errors.New("no server: run `ferry login --server URL` or pass --server")
	}
	return newAPIClient(server, token, ca, insecure)
}

func newAPIClient(server, token, caFile string, insecure bool) (*apiClient, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http(s)://host[:port]", server)
	}
	tcfg := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // opt-in for dev self-signed certificates
	if caFile != "" {
		pemData, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("--ca-cert: no certificate in %s", caFile)
		}
		tcfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tcfg
	return &apiClient{base: strings.TrimRight(server, "/"), token: token, http: &http.Client{Transport: tr}}, nil
}

// request sends a JSON request and returns the response; a problem answer
// becomes an *apiserver.APIError.
func (c *apiClient) request(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		ae := &apiserver.APIError{}
		if json.Unmarshal(data, &ae.Problem) != nil || ae.Status == 0 {
			ae.Status, ae.Detail = resp.StatusCode, strings.TrimSpace(string(data))
		}
		if ae.Status == http.StatusUnauthorized && c.token == "" {
			ae.Detail += " (run `ferry login`)"
		}
		return nil, ae
	}
	return resp, nil
}

// call sends a request and decodes a JSON answer into out (nil: discard).
func (c *apiClient) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.request(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
