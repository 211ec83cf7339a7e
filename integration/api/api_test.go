// Package api_test runs the control-plane API against the real services:
// PostgreSQL (a fresh database per test) and, when available, Temporal with
// the control-plane worker. Run through
//
//	go run ./integration/services/testenv -- go test ./integration/api/
package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/integration/harness"
	"github.com/ferry-migrate/ferry/store"
)

// env is the API server on a fresh PostgreSQL database, served over HTTPS
// with a certificate of the control plane's CA (agents present theirs).
type env struct {
	t        *testing.T
	db       *store.DB
	srv      *apiserver.Server
	ca       *pki.CA
	url      string
	client   *http.Client // trusts the CA, no client certificate
	token    map[string]string
	password map[string]string
}

type options struct {
	engine apiserver.JobEngine
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	ctx := context.Background()
	dsn := harness.FreshPostgres(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	creds, err := apiserver.Bootstrap(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pki.InitCA(filepath.Join(dir, "ca"), "it"); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := apiserver.New(apiserver.Config{DB: db, CA: ca, Engine: o.engine, TemporalUIURL: "http://127.0.0.1:8233",
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		PasswordHashing: &argon2id.Params{Memory: 4096, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	certPEM, keyPEM, err := ca.Issue("ferry-server", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS13}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	e := &env{t: t, db: db, srv: srv, ca: ca, url: ts.URL, token: map[string]string{}, password: map[string]string{},
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	for _, c := range creds {
		var s apiserver.SessionBody
		e.expect(e.call("POST", "/api/v1/auth/login", "", map[string]string{"username": c.User, "password": c.Password}, &s), http.StatusOK)
		if !s.MustChangePassword {
			t.Fatalf("built-in %s is not flagged must-change-password", c.User)
		}
		pw := c.Password + "-Chg1"
		e.expect(e.call("POST", "/api/v1/auth/password", s.Token, map[string]string{"currentPassword": c.Password, "newPassword": pw}, nil), http.StatusNoContent)
		e.token[c.User], e.password[c.User] = s.Token, pw
	}
	return e
}

// reply is an answer's status and body.
type reply struct {
	code int
	body string
}

// call sends a request and decodes a JSON answer into out.
func (e *env) call(method, path, token string, in, out any) reply {
	e.t.Helper()
	var body io.Reader
	switch b := in.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		body = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, e.url+path, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		e.t.Errorf("%s %s: %d answered %s, not a problem document", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if out != nil && resp.StatusCode < 300 && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("decode %s: %v", data, err)
		}
	}
	return reply{resp.StatusCode, string(data)}
}

func (e *env) expect(r reply, want int) string {
	e.t.Helper()
	if r.code != want {
		e.t.Fatalf("status %d, want %d: %s", r.code, want, r.body)
	}
	return r.body
}

// enroll registers an agent the way `ferry agent --enroll` does and returns
// its identity and an HTTP client presenting its certificate.
func (e *env) enroll(name string) (*apiserver.Enrollment, *http.Client) {
	e.t.Helper()
	var tok apiserver.CreateEnrollmentTokenOutput
	e.expect(e.call("POST", "/api/v1/hosts/enrollment-tokens", e.token["admin"], map[string]any{"description": name}, &tok.Body), http.StatusCreated)
	facts := apiserver.HostFacts{Hostname: name, OS: "linux", Platform: "Debian 12", Arch: "amd64", Kernel: "6.18", CPUs: 2,
		MemoryBytes: 4 << 30, Disks: []ferry.HostDisk{{Device: "/dev/vda1", MountPoint: "/", TotalBytes: 50 << 30, FreeBytes: 20 << 30}},
		Addresses: []string{"127.0.0.1"}, AgentVersion: "0.1.0"}
	en, err := apiserver.EnrollWith(context.Background(), e.client, e.url, tok.Body.Token, "", facts)
	if err != nil {
		e.t.Fatal(err)
	}
	ac, err := apiserver.AgentClient(en.CertPEM, en.KeyPEM, en.CAPEM)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := apiserver.SendHeartbeat(context.Background(), ac, e.url, nil, ferry.HostMetrics{CPUPercent: 1}); err != nil {
		e.t.Fatal(err)
	}
	return en, ac
}

func (e *env) createJob(name, src, dst string) apiserver.JobView {
	e.t.Helper()
	var j apiserver.JobView
	e.expect(e.call("POST", "/api/v1/jobs", e.token["admin"], map[string]any{"name": name, "sourceHostId": src,
		"sourcePaths": []string{"/srv/" + name}, "targetHostId": dst, "targetPath": "/srv/" + name}, &j), http.StatusCreated)
	return j
}

// TestMustShow is the issue's must-show on PostgreSQL: an unauthenticated
// list of jobs answers 401; an auditor creating a job and a sysadmin
// starting one answer 403, and both refusals are in the audit log, whose
// chain verifies.
func TestMustShow(t *testing.T) {
	e := newEnv(t, options{})
	e.expect(e.call("GET", "/api/v1/jobs", "", nil, nil), http.StatusUnauthorized)

	src, _ := e.enroll("src")
	dst, _ := e.enroll("dst")
	job := e.createJob("www", src.HostID, dst.HostID)
	e.expect(e.call("POST", "/api/v1/jobs", e.token["auditor"], map[string]any{"name": "x", "sourceHostId": src.HostID,
		"sourcePaths": []string{"/a"}, "targetHostId": dst.HostID, "targetPath": "/b"}, nil), http.StatusForbidden)
	e.expect(e.call("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["sysadmin"], nil, nil), http.StatusForbidden)

	var page apiserver.AuditListOutput
	e.expect(e.call("GET", "/api/v1/audit?result=denied", e.token["auditor"], nil, &page.Body), http.StatusOK)
	found := map[string]bool{}
	for _, r := range page.Body.Items {
		found[r.Actor+" "+r.Action+" "+r.Target] = true
	}
	for _, want := range []string{"auditor create-job jobs", "sysadmin start-job jobs:" + job.ID} {
		if !found[want] {
			t.Errorf("no denied audit record %q in %+v", want, page.Body.Items)
		}
	}
	var v apiserver.VerifyAuditOutput
	e.expect(e.call("GET", "/api/v1/audit/verify", e.token["auditor"], nil, &v.Body), http.StatusOK)
	if !v.Body.Valid || v.Body.Checked < 15 {
		t.Fatalf("audit chain: %+v", v.Body)
	}
	// Even someone who can switch the append-only trigger off cannot edit
	// a record unnoticed.
	ctx := context.Background()
	var victim int64
	if err := e.db.Bun().NewRaw("SELECT min(id) FROM audit_records WHERE action = 'create-job'").Scan(ctx, &victim); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only",
		"UPDATE audit_records SET target = 'jobs:other' WHERE id = ?"} {
		if _, err := e.db.Bun().ExecContext(ctx, q, victim); err != nil {
			t.Fatal(err)
		}
	}
	e.expect(e.call("GET", "/api/v1/audit/verify", e.token["auditor"], nil, &v.Body), http.StatusOK)
	if v.Body.Valid || v.Body.FirstBrokenID != victim {
		t.Fatalf("verify after tampering with record %d: %+v", victim, v.Body)
	}
}

// TestHostsAndJobsOnPostgres covers enrollment, heartbeats over mutual TLS,
// revocation and the job operations that need no workflow engine.
func TestHostsAndJobsOnPostgres(t *testing.T) {
	e := newEnv(t, options{})
	src, srcAgent := e.enroll("db-src")
	dst, _ := e.enroll("db-dst")
	var hosts apiserver.HostListOutput
	e.expect(e.call("GET", "/api/v1/hosts?q=db-", e.token["operator"], nil, &hosts.Body), http.StatusOK)
	if hosts.Body.Total != 2 || hosts.Body.Items[0].Status != ferry.HostOnline {
		t.Fatalf("hosts %+v", hosts.Body)
	}
	job := e.createJob("db", src.HostID, dst.HostID)
	var p apiserver.JobView
	e.expect(e.call("PATCH", "/api/v1/jobs/"+job.ID, e.token["admin"], map[string]any{"version": job.Version, "excludes": []string{"*.log"}, "compression": "off"}, &p), http.StatusOK)
	if p.Compression != "off" || len(p.Excludes) != 1 || p.Version != job.Version+1 {
		t.Errorf("patched %+v", p)
	}
	e.expect(e.call("PATCH", "/api/v1/jobs/"+job.ID, e.token["admin"], map[string]any{"version": job.Version, "compression": "fast"}, nil), http.StatusConflict)
	var list apiserver.JobListOutput
	e.expect(e.call("GET", "/api/v1/jobs?state=pending&host="+src.HostID, e.token["operator"], nil, &list.Body), http.StatusOK)
	if list.Body.Total != 1 || list.Body.Items[0].ID != job.ID {
		t.Errorf("list %+v", list.Body)
	}
	// Without an engine, actions answer 503 rather than pretend.
	e.expect(e.call("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["operator"], nil, nil), http.StatusServiceUnavailable)

	// PostgreSQL refuses NUL characters; the API refuses them first, as
	// input errors.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/jobs", `{"name":"a\u0000b","sourceHostId":"` + src.HostID + `","sourcePaths":["/x"],"targetHostId":"` + dst.HostID + `","targetPath":"/y"}`},
		{"GET", "/api/v1/jobs?name=" + url.QueryEscape("a\x00b"), ""},
		{"GET", "/api/v1/hosts?q=%00", ""},
		{"POST", "/api/v1/auth/login", `{"username":"admin\u0000","password":"x"}`},
		{"POST", "/api/v1/hosts/enrollment-tokens", `{"description":"\u0000"}`},
		{"GET", "/api/v1/audit?actor=%00", ""},
		{"GET", "/api/v1/jobs?name=%ff%fe", ""},
		{"GET", "/api/v1/hosts?q=%c3%28", ""},
		{"GET", "/api/v1/audit?target=%80", ""},
	} {
		var in any
		if c.body != "" {
			in = c.body
		}
		tok := e.token["admin"]
		if strings.HasPrefix(c.path, "/api/v1/audit") {
			tok = e.token["auditor"]
		}
		r := e.call(c.method, c.path, tok, in, nil)
		if r.code < 400 || r.code >= 500 {
			t.Errorf("%s %s with NUL: %d %s", c.method, c.path, r.code, r.body)
		}
	}

	// Revocation: the agent's certificate is refused from then on.
	serial := mustSerial(t, src.CertPEM)
	e.expect(e.call("POST", "/api/v1/hosts/"+src.HostID+"/revoke", e.token["admin"], nil, nil), http.StatusOK)
	if !e.srv.IsRevoked(serial) {
		t.Error("IsRevoked is false for the revoked host's certificate")
	}
	srcAgent.CloseIdleConnections()
	if _, err := apiserver.SendHeartbeat(context.Background(), srcAgent, e.url, nil, ferry.HostMetrics{}); err == nil {
		t.Error("a revoked host's heartbeat was accepted")
	}
	e.expect(e.call("DELETE", "/api/v1/jobs/"+job.ID, e.token["admin"], nil, nil), http.StatusNoContent)
}

func mustSerial(t *testing.T, certPEM []byte) *big.Int {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// followProgress reads the job's SSE stream until its end event or the
// deadline, returning every state seen.
func (e *env) followProgress(jobID, token string, deadline time.Duration, onState func(ferry.JobState)) ([]ferry.JobState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/jobs/"+jobID+"/progress", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("progress: %d", resp.StatusCode)
	}
	var states []ferry.JobState
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			var st apiserver.JobStatus
			if event == apiserver.EventState {
				var ev ferry.JobEvent
				if err := json.Unmarshal([]byte(v), &ev); err != nil {
					return states, err
				}
				st.State = ev.ToState
			} else if err := json.Unmarshal([]byte(v), &st); err != nil {
				return states, err
			}
			if len(states) == 0 || states[len(states)-1] != st.State {
				states = append(states, st.State)
				if onState != nil {
					onState(st.State)
				}
			}
			if event == apiserver.EventEnd {
				return states, nil
			}
		}
	}
	return states, fmt.Errorf("stream ended without an end event: %v", sc.Err())
}
