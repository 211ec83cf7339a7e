package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
)

// TestAgentEventsAudited: an enrolled agent reports a refused path with its
// certificate; the audit log holds one denied record naming the job, the
// offending peer and the path (quoted, control characters escaped), and the
// chain verifies. Without a certificate the report is refused.
func TestAgentEventsAudited(t *testing.T) {
	e := newEnv(t)
	res, _ := e.enrollHost("target1")
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
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	ev := AgentEvent{Kind: AgentEventPathRefused, JobID: "evil-job", Peer: "10.0.0.66:4242", PeerName: "rogue",
		Root: "/srv/target", Reason: "path rejected: \"../outside/canary\n[forged]\": escapes root"}
	if err := ReportAgentEvents(context.Background(), anon, ts.URL, []AgentEvent{ev}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("report without a certificate: %v", err)
	}
	if err := ReportAgentEvents(context.Background(), client, ts.URL, []AgentEvent{ev}); err != nil {
		t.Fatal(err)
	}
	recs, _, err := e.db.ListAudit(context.Background(), ferry.AuditFilter{Action: AuditActionPathRefused})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d path-refused records", len(recs))
	}
	r := recs[0]
	if r.Actor != "host:"+res.HostID || r.Target != "jobs:evil-job" || r.SourceAddr != "10.0.0.66:4242" || r.Result != ferry.AuditDenied ||
		!strings.Contains(r.Detail, `\"../outside/canary\n[forged]\"`) || strings.Contains(r.Detail, "\n") {
		t.Errorf("audit record %+v", r)
	}
	v := e.expect(e.do("GET", "/api/v1/audit/verify", e.token["auditor"], nil), http.StatusOK)
	if !strings.Contains(v.Body.String(), `"valid":true`) {
		t.Errorf("audit chain: %s", v.Body.String())
	}
}

// TestCACertificate: the CA certificate is public, PEM, and its fingerprint
// header is the SHA-256 of its DER bytes.
func TestCACertificate(t *testing.T) {
	e := newEnv(t)
	r := e.expect(e.do("GET", "/api/v1/ca.crt", "", nil), http.StatusOK)
	blk, _ := pem.Decode(r.Body.Bytes())
	if blk == nil || blk.Type != "CERTIFICATE" || string(blk.Bytes) != string(e.ca.Cert.Raw) {
		t.Fatalf("ca.crt body %q", r.Body.String())
	}
	fp := r.Header().Get("X-Ferry-CA-SHA256")
	if fp != CAFingerprint(e.ca.Cert.Raw) || len(fp) != 95 {
		t.Errorf("fingerprint header %q", fp)
	}
}
