package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/apiserver"
)

// Files of an enrolled agent, in DATA-DIR/enrollment (0700; files 0600).
const (
	enrollmentDir  = "enrollment"
	enrollmentFile = "enrollment.json"
	// serverCAFile is the --ca-cert given at enrollment, trusted for the
	// server's HTTPS certificate next to the control plane's CA.
	serverCAFile = "server-ca.crt"
)

// enrollment is what an enrolled agent keeps besides its certificate.
type enrollment struct {
	HostID     string    `json:"hostId"`
	TaskQueue  string    `json:"taskQueue"`
	ServerURL  string    `json:"serverUrl"`
	EnrolledAt time.Time `json:"enrolledAt"`

	dir string // the enrollment directory
}

// loadEnrollment reads DATA-DIR/enrollment. It returns fs.ErrNotExist
// (wrapped) when the agent never enrolled.
func loadEnrollment(dataDir string) (*enrollment, error) {
	dir := filepath.Join(dataDir, enrollmentDir)
	data, err := os.ReadFile(filepath.Join(dir, enrollmentFile))
	if err != nil {
		return nil, fmt.Errorf("read enrollment: %w", err)
	}
	en := &enrollment{dir: dir}
	if err := json.Unmarshal(data, en); err != nil || en.HostID == "" || en.ServerURL == "" {
		return nil, fmt.Errorf("enrollment %s is damaged (%v): remove %s and enroll again", filepath.Join(dir, enrollmentFile), err, dir)
	}
	return en, nil
}

// identity loads the certificate the control plane issued.
func (en *enrollment) identity() (*pki.Identity, error) {
	return pki.LoadIdentity(en.dir)
}

// apiClient is the HTTPS client for heartbeats: it presents the host's
// certificate and trusts the control plane's CA, the --ca-cert given at
// enrollment and the system's roots.
func (en *enrollment) apiClient(id *pki.Identity) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	for _, name := range []string{pki.RootsFile, serverCAFile} {
		data, err := os.ReadFile(filepath.Join(en.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		roots.AppendCertsFromPEM(data)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{id.Cert}, RootCAs: roots, MinVersion: tls.VersionTLS12,
	}}}, nil
}

// enrollRequest is a first start with --enroll.
type enrollRequest struct {
	URL      string
	Token    string
	Name     string
	CACert   string // file: the control plane's CA certificate (PEM)
	Insecure bool   // skip verification of the server's certificate
}

// enrollClient returns the client for the enrollment call. The enrollment
// token authenticates the agent to the server but not the server to the
// agent: the server's certificate must verify against --ca-cert (or the
// system roots when the server has a public certificate), unless
// --insecure-enroll.
func (r enrollRequest) enrollClient() (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case r.Insecure:
		cfg.InsecureSkipVerify = true //nolint:gosec // --insecure-enroll, for dev only
	case r.CACert != "":
		data, err := os.ReadFile(r.CACert)
		if err != nil {
			return nil, settingError("ca-cert", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, settingError("ca-cert", fmt.Errorf("%s holds no PEM certificate", r.CACert))
		}
		cfg.RootCAs = pool
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// validateEnrollURL requires an https URL with a host.
func validateEnrollURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, settingError("enroll", fmt.Errorf("%q is not a URL like https://ferry.example:8443", s))
	}
	if u.Scheme != "https" {
		return nil, settingError("enroll", fmt.Errorf("%q: agents talk to the control plane over https only (they authenticate with a client certificate)", s))
	}
	return u, nil
}

// enroll registers the host and writes the enrollment directory of dataDir:
// all files first into a temporary directory, renamed into place at the
// end, so that an interrupted enrollment leaves no half-enrolled state.
func enroll(ctx context.Context, dataDir string, r enrollRequest, facts apiserver.HostFacts) (*enrollment, error) {
	if _, err := validateEnrollURL(r.URL); err != nil {
		return nil, err
	}
	if r.Token == "" {
		return nil, settingError("token", errors.New("an enrollment token is required to enroll (ferry hosts enroll-token)"))
	}
	client, err := r.enrollClient()
	if err != nil {
		return nil, err
	}
	res, err := apiserver.EnrollWith(ctx, client, r.URL, r.Token, r.Name, facts)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && !r.Insecure && r.CACert == "" {
			return nil, fmt.Errorf("%w (pass the control plane's CA certificate with --ca-cert, e.g. the server's CA-DIR/ca.crt)", err)
		}
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	tmp, err := os.MkdirTemp(dataDir, enrollmentDir+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("write enrollment: %w", err)
	}
	defer os.RemoveAll(tmp)
	en := &enrollment{HostID: res.HostID, TaskQueue: res.TaskQueue, ServerURL: r.URL, EnrolledAt: time.Now().UTC()}
	meta, _ := json.MarshalIndent(en, "", "  ")
	files := map[string][]byte{pki.NodeCertFile: res.CertPEM, pki.NodeKeyFile: res.KeyPEM, pki.RootsFile: res.CAPEM,
		enrollmentFile: append(meta, '\n')}
	if r.CACert != "" {
		if files[serverCAFile], err = os.ReadFile(r.CACert); err != nil {
			return nil, settingError("ca-cert", err)
		}
	}
	for name, data := range files {
		if err := writeSynced(filepath.Join(tmp, name), data); err != nil {
			return nil, fmt.Errorf("write enrollment: %w", err)
		}
	}
	en.dir = filepath.Join(dataDir, enrollmentDir)
	if err := os.Rename(tmp, en.dir); err != nil {
		return nil, fmt.Errorf("write enrollment (host %s is registered; revoke it before enrolling again): %w", res.HostID, err)
	}
	if d, err := os.Open(dataDir); err == nil {
		d.Sync()
		d.Close()
	}
	return en, nil
}

// writeSynced writes a 0600 file and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
