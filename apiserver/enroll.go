package apiserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
)

// Enroll registers this host with the control plane at baseURL (e.g.
// "https://ferry.example:8443") using a one-time enrollment token. The key
// pair is generated here and only a certificate request leaves the host.
// It returns the PEM certificate, the PEM private key, the control plane's
// CA certificate and the new host's ID.
//
// It uses http.DefaultClient; use EnrollWith to trust a private CA for the
// server's certificate. Returns an error carrying the server's problem
// detail when the token is unknown, expired or used (401) or the facts are
// invalid (422).
func Enroll(ctx context.Context, baseURL, token string, facts HostFacts) (certPEM, keyPEM, caPEM []byte, hostID string, err error) {
	en, err := EnrollWith(ctx, http.DefaultClient, baseURL, token, "", facts)
	if err != nil {
		return nil, nil, nil, "", err
	}
	return en.CertPEM, en.KeyPEM, en.CAPEM, en.HostID, nil
}

// Enrollment is the identity an agent receives.
type Enrollment struct {
	HostID    string
	TaskQueue string
	CertPEM   []byte
	KeyPEM    []byte
	CAPEM     []byte
}

// EnrollWith is Enroll with a chosen HTTP client and host display name
// ("" for the hostname).
func EnrollWith(ctx context.Context, client *http.Client, baseURL, token, name string, facts HostFacts) (*Enrollment, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("enroll: generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: facts.Hostname}}, key)
	if err != nil {
		return nil, fmt.Errorf("enroll: certificate request: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("enroll: encode key: %w", err)
	}
	var in EnrollInput
	in.Body.Token, in.Body.Name, in.Body.Facts = token, name, facts
	in.Body.CSR = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	var res EnrollResult
	if err := postJSON(ctx, client, strings.TrimRight(baseURL, "/")+"/api/v1/agents/enroll", in.Body, &res); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	return &Enrollment{HostID: res.HostID, TaskQueue: res.TaskQueue, CertPEM: []byte(res.Certificate),
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), CAPEM: []byte(res.CA)}, nil
}

// AgentClient returns an HTTP client that presents the agent's certificate
// and trusts only the control plane's CA, for heartbeats over HTTPS.
func AgentClient(certPEM, keyPEM, caPEM []byte) (*http.Client, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("agent client: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("agent client: no CA certificate in PEM")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13,
	}}}, nil
}

// SendHeartbeat reports the agent alive through client (see AgentClient),
// with fresh facts (nil: unchanged) and a metrics sample. It returns the
// server's time, for clock-skew checks. Returns an error carrying the
// problem detail when the host is revoked or unknown (401).
func SendHeartbeat(ctx context.Context, client *http.Client, baseURL string, facts *HostFacts, m ferry.HostMetrics) (time.Time, error) {
	var in HeartbeatInput
	in.Body.Facts, in.Body.Metrics = facts, m
	var out HeartbeatOutput
	if err := postJSON(ctx, client, strings.TrimRight(baseURL, "/")+"/api/v1/agents/heartbeat", in.Body, &out.Body); err != nil {
		return time.Time{}, fmt.Errorf("heartbeat: %w", err)
	}
	return out.Body.Time, nil
}

// APIError is a problem document returned by the server.
type APIError struct {
	Problem
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Detail)
	for _, d := range e.Errors {
		msg += fmt.Sprintf("; %s: %s", strings.TrimPrefix(d.Location, "body."), d.Message)
	}
	return msg
}

func postJSON(ctx context.Context, client *http.Client, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{}
		if json.Unmarshal(data, &ae.Problem) != nil || ae.Status == 0 {
			ae.Status, ae.Detail = resp.StatusCode, strings.TrimSpace(string(data))
		}
		return ae
	}
	return json.Unmarshal(data, out)
}
