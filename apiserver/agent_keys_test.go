package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
)

// TestAgentJobKey: a job's source and target agents fetch its payload key
// over mutual TLS; any other host gets 403, no certificate 401; every call
// is audited and no record or log line carries the key.
func TestAgentJobKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src, _ := e.enrollHost("key-src")
	dst, _ := e.enrollHost("key-dst")
	other, _ := e.enrollHost("key-other")
	var j JobView
	decode(t, e.expect(e.do("POST", "/api/v1/jobs", e.token["admin"], map[string]any{"name": "enc", "sourceHostId": src.HostID,
		"sourcePaths": []string{"/srv/data"}, "targetHostId": dst.HostID, "targetPath": "/srv/data", "encryption": "aes"}), http.StatusCreated), &j)
	plain := e.createJob("plain")
	stored, err := e.db.FindJobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	ts := e.tlsServer()
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	clientOf := func(r *EnrollResult) *http.Client {
		tc := &tls.Config{RootCAs: pool}
		if r != nil {
			cert, err := tls.X509KeyPair([]byte(r.Certificate), []byte(r.Key))
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	status := func(err error) int {
		var ae *APIError
		if errors.As(err, &ae) {
			return ae.Status
		}
		return 0
	}
	for _, h := range []*EnrollResult{&src, &dst} {
		k, err := JobKey(ctx, clientOf(h), ts.URL, j.ID)
		if err != nil {
			t.Fatalf("host %s: %v", h.HostID, err)
		}
		if len(k) != 32 || !bytes.Equal(k, stored.EncryptionKey) {
			t.Fatalf("host %s got a %d-byte key that is not the job's", h.HostID, len(k))
		}
	}
	if _, err := JobKey(ctx, clientOf(&other), ts.URL, j.ID); status(err) != http.StatusForbidden {
		t.Errorf("another host's certificate: %v", err)
	}
	if _, err := JobKey(ctx, clientOf(&src), ts.URL, "aaaaaaaaaaaaaaaa"); status(err) != http.StatusForbidden {
		t.Errorf("unknown job: %v", err)
	}
	if _, err := JobKey(ctx, clientOf(nil), ts.URL, j.ID); status(err) != http.StatusUnauthorized {
		t.Errorf("no certificate: %v", err)
	}
	if _, err := JobKey(ctx, clientOf(&src), ts.URL, plain.ID); status(err) != http.StatusForbidden {
		t.Errorf("a job of other hosts: %v", err)
	}
	// A user's bearer token is no agent certificate.
	e.expect(e.do("GET", "/api/v1/agents/jobs/"+j.ID+"/key", e.token["admin"], nil), http.StatusUnauthorized)

	recs, _, err := e.db.ListAudit(ctx, ferry.AuditFilter{Action: "agent-job-key", Limit: 100, Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	var ok, denied, unauth int
	for _, r := range recs {
		switch {
		case r.Result == ferry.AuditSuccess && r.Target == "job:"+j.ID && (r.Actor == "host:"+src.HostID || r.Actor == "host:"+dst.HostID):
			ok++
		case r.Result == ferry.AuditDenied && strings.Contains(r.Detail, "403"):
			denied++
		case r.Result == ferry.AuditDenied && strings.Contains(r.Detail, "401"):
			unauth++
		}
		if strings.Contains(r.Detail, string(stored.EncryptionKey)) || strings.Contains(r.Detail, "key\":") {
			t.Errorf("audit record carries the key: %+v", r)
		}
	}
	if ok != 2 || denied != 3 || unauth != 2 {
		t.Errorf("audit: %d issued, %d refused (403), %d unauthenticated; records %+v", ok, denied, unauth, recs)
	}
}
