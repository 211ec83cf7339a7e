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
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent/pki"
)

func parseCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		t.Fatalf("no PEM in %q", p)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnrollment(t *testing.T) {
	e := newEnv(t)
	res, token := e.enrollHost("web1")
	cert := parseCert(t, res.Certificate)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(res.CA))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued certificate does not verify against the returned CA: %v", err)
	}
	if cert.Subject.CommonName != res.HostID || res.TaskQueue != "host-"+res.HostID || res.Key == "" {
		t.Fatalf("enroll result %+v, CN %q", res, cert.Subject.CommonName)
	}
	if _, err := tls.X509KeyPair([]byte(res.Certificate), []byte(res.Key)); err != nil {
		t.Fatalf("certificate and key do not match: %v", err)
	}
	// The token is one-time.
	r := e.expect(e.do("POST", "/api/v1/agents/enroll", "", map[string]any{"token": token, "facts": testFacts("web2")}), http.StatusUnauthorized)
	problemOf(t, r)
	// Facts are stored and shown.
	var h HostView
	decode(t, e.expect(e.do("GET", "/api/v1/hosts/"+res.HostID, e.token["operator"], nil), http.StatusOK), &h)
	if h.Hostname != "web1" || h.CPUs != 4 || h.MemoryBytes != 8<<30 || len(h.Disks) != 1 || h.Disks[0].FreeBytes != 60<<30 ||
		h.Kernel != "6.18.0" || h.AgentVersion != "0.1.0" || h.CertSerial != cert.SerialNumber.Text(16) || h.Status != ferry.HostOnline {
		t.Errorf("host %+v", h)
	}
	// An expired token is refused.
	var tok CreateEnrollmentTokenOutput
	decode(t, e.expect(e.do("POST", "/api/v1/hosts/enrollment-tokens", e.token["admin"], map[string]any{"ttlSeconds": 1}), http.StatusCreated), &tok.Body)
	if _, err := e.db.Bun().ExecContext(context.Background(), "UPDATE enrollment_tokens SET expires_at = ? WHERE id = ?",
		time.Now().Add(-time.Minute).UTC(), tok.Body.Info.ID); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("POST", "/api/v1/agents/enroll", "", map[string]any{"token": tok.Body.Token, "facts": testFacts("late")}), http.StatusUnauthorized)

	// With a CSR the key never leaves the agent.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	decode(t, e.expect(e.do("POST", "/api/v1/hosts/enrollment-tokens", e.token["admin"], map[string]any{}), http.StatusCreated), &tok.Body)
	var res2 EnrollResult
	decode(t, e.expect(e.do("POST", "/api/v1/agents/enroll", "", map[string]any{"token": tok.Body.Token, "facts": testFacts("db1"), "csr": string(csr)}), http.StatusOK), &res2)
	c2 := parseCert(t, res2.Certificate)
	if res2.Key != "" || !c2.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) || c2.Subject.CommonName != res2.HostID {
		t.Errorf("CSR enrollment: key %q, CN %q", res2.Key, c2.Subject.CommonName)
	}
	// A garbage CSR is an input error and does not consume the token.
	decode(t, e.expect(e.do("POST", "/api/v1/hosts/enrollment-tokens", e.token["admin"], map[string]any{}), http.StatusCreated), &tok.Body)
	e.expect(e.do("POST", "/api/v1/agents/enroll", "", map[string]any{"token": tok.Body.Token, "facts": testFacts("db2"), "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}), http.StatusUnprocessableEntity)
	e.expect(e.do("POST", "/api/v1/agents/enroll", "", map[string]any{"token": tok.Body.Token, "facts": testFacts("db2")}), http.StatusOK)

	var list HostListOutput
	decode(t, e.expect(e.do("GET", "/api/v1/hosts?q=db", e.token["admin"], nil), http.StatusOK), &list.Body)
	if list.Body.Total != 2 {
		t.Errorf("hosts matching db: %d", list.Body.Total)
	}
	var toks EnrollmentTokenListOutput
	decode(t, e.expect(e.do("GET", "/api/v1/hosts/enrollment-tokens", e.token["admin"], nil), http.StatusOK), &toks.Body)
	if len(toks.Body.Items) != 4 || toks.Body.Items[0].HostID == "" {
		t.Errorf("enrollment tokens %+v", toks.Body.Items)
	}
}

// TestHeartbeatAndRevocation runs the server over real mutual TLS: an agent
// heartbeats with its certificate until the host is revoked.
func TestHeartbeatAndRevocation(t *testing.T) {
	e := newEnv(t)
	res, _ := e.enrollHost("app1")
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	srvCertPEM, srvKeyPEM, err := e.ca.Issue("ferry-server", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, _ := tls.X509KeyPair(srvCertPEM, srvKeyPEM)
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS13}
	ts.StartTLS()
	defer ts.Close()

	agentCert, err := tls.X509KeyPair([]byte(res.Certificate), []byte(res.Key))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{agentCert}}}}
	beat := func(c *http.Client) (int, string) {
		body, _ := json.Marshal(map[string]any{"metrics": ferry.HostMetrics{CPUPercent: 12.5, MemoryUsedBytes: 1 << 30, MemoryTotalBytes: 8 << 30}})
		resp, err := c.Post(ts.URL+"/api/v1/agents/heartbeat", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := beat(client); code != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	h, err := e.db.FindHostByID(context.Background(), res.HostID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Metrics.CPUPercent != 12.5 || time.Since(h.LastSeenAt) > time.Minute {
		t.Errorf("heartbeat not recorded: %+v", h)
	}
	// Without a client certificate, or with a foreign one: 401.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, _ := beat(noCert); code != http.StatusUnauthorized {
		t.Errorf("heartbeat without certificate: %d", code)
	}
	foreignDir := t.TempDir()
	if err := pki.InitCA(foreignDir, "foreign"); err != nil {
		t.Fatal(err)
	}
	foreign, _ := pki.LoadCA(foreignDir)
	fc, fk, _ := foreign.Issue(res.HostID, nil, time.Hour)
	fcert, _ := tls.X509KeyPair(fc, fk)
	foreignClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{fcert}}}}
	// (Go's client does not even offer a certificate the server's CA list
	// does not name; either way the call must not succeed.)
	if resp, err := foreignClient.Post(ts.URL+"/api/v1/agents/heartbeat", "application/json", bytes.NewReader([]byte(`{"metrics":{}}`))); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("heartbeat with a foreign certificate: %d", resp.StatusCode)
		}
	}

	serial := parseCert(t, res.Certificate).SerialNumber
	if e.srv.IsRevoked(serial) {
		t.Fatal("fresh host reported revoked")
	}
	e.expect(e.do("POST", "/api/v1/hosts/"+res.HostID+"/revoke", e.token["operator"], nil), http.StatusForbidden)
	var hv HostView
	decode(t, e.expect(e.do("POST", "/api/v1/hosts/"+res.HostID+"/revoke", e.token["admin"], nil), http.StatusOK), &hv)
	if hv.Status != ferry.HostRevoked {
		t.Errorf("revoked host status %s", hv.Status)
	}
	if !e.srv.IsRevoked(serial) {
		t.Error("IsRevoked false after revocation")
	}
	client.CloseIdleConnections()
	if code, body := beat(client); code != http.StatusUnauthorized {
		t.Errorf("heartbeat of a revoked host: %d %s", code, body)
	}
	// A job cannot use a revoked host.
	other, _ := e.enrollHost("app2")
	r := e.expect(e.do("POST", "/api/v1/jobs", e.token["admin"], map[string]any{"name": "j", "sourceHostId": res.HostID,
		"sourcePaths": []string{"/srv"}, "targetHostId": other.HostID, "targetPath": "/srv"}), http.StatusUnprocessableEntity)
	if p := problemOf(t, r); len(p.Errors) != 1 || p.Errors[0].Location != "body.sourceHostId" {
		t.Errorf("job with revoked host: %+v", p)
	}
}

// tlsServer serves the API over HTTPS with a certificate from the test CA,
// asking agents for their client certificates.
func (e *testEnv) tlsServer() *httptest.Server {
	e.t.Helper()
	ts := httptest.NewUnstartedServer(e.srv.Handler())
	certPEM, keyPEM, err := e.ca.Issue("ferry-server", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	ts.TLS = e.srv.AgentTLS(&tls.Config{Certificates: []tls.Certificate{cert}})
	ts.StartTLS()
	e.t.Cleanup(ts.Close)
	return ts
}

func TestEnrollClient(t *testing.T) {
	e := newEnv(t)
	ts := e.tlsServer()
	var tok CreateEnrollmentTokenOutput
	decode(t, e.expect(e.do("POST", "/api/v1/hosts/enrollment-tokens", e.token["admin"], map[string]any{}), http.StatusCreated), &tok.Body)
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx := context.Background()
	en, err := EnrollWith(ctx, trusting, ts.URL, tok.Body.Token, "", testFacts("agent1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnrollWith(ctx, trusting, ts.URL, tok.Body.Token, "", testFacts("agent1")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("second enrollment with the same token: %v", err)
	}
	client, err := AgentClient(en.CertPEM, en.KeyPEM, en.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	facts := testFacts("agent1")
	facts.Kernel = "6.19.0"
	srvTime, err := SendHeartbeat(ctx, client, ts.URL, &facts, ferry.HostMetrics{Load1: 0.5})
	if err != nil || time.Since(srvTime).Abs() > time.Minute {
		t.Fatalf("heartbeat: %v, server time %v", err, srvTime)
	}
	h, _ := e.db.FindHostByID(ctx, en.HostID)
	if h.Kernel != "6.19.0" || h.Metrics.Load1 != 0.5 {
		t.Errorf("heartbeat facts not stored: %+v", h)
	}
	e.expect(e.do("POST", "/api/v1/hosts/"+en.HostID+"/revoke", e.token["admin"], nil), http.StatusOK)
	client.CloseIdleConnections()
	// AgentTLS refuses the revoked certificate in the handshake already.
	if _, err := SendHeartbeat(ctx, client, ts.URL, nil, ferry.HostMetrics{}); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("heartbeat after revocation: %v", err)
	}
}
