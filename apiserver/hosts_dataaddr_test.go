package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
)

// TestDataAddrAndRevokedSerials: the advertised data address is validated,
// stored, and used as the job's target address; heartbeats carry the
// revoked certificates' serials.
func TestDataAddrAndRevokedSerials(t *testing.T) {
	e := newEnv(t)
	ts := e.tlsServer()
	ctx := context.Background()
	newToken := func() string {
		var tok CreateEnrollmentTokenOutput
		decode(t, e.expect(e.do("POST", "/api/v1/hosts/enrollment-tokens", e.token["admin"], map[string]any{}), http.StatusCreated), &tok.Body)
		return tok.Body.Token
	}
	for _, bad := range []string{"192.0.2.1", "192.0.2.1:0", ":7780", "host:http", "[::1]:99999"} {
		facts := testFacts("bad")
		facts.DataAddr = bad
		r := e.expect(e.do("POST", "/api/v1/agents/enroll", "", map[string]any{"token": newToken(), "facts": facts}), http.StatusUnprocessableEntity)
		if !strings.Contains(r.Body.String(), "facts.dataAddr") {
			t.Errorf("data address %q: problem does not name the field", bad)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Cert)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	enroll := func(name, addr string) *Enrollment {
		facts := testFacts(name)
		facts.DataAddr = addr
		en, err := EnrollWith(ctx, trusting, ts.URL, newToken(), name, facts)
		if err != nil {
			t.Fatal(err)
		}
		return en
	}
	a := enroll("a", "127.0.0.1:7781")
	b := enroll("b", "")
	eng := &TemporalEngine{Hosts: e.db}
	if addr, err := eng.targetAddr(ctx, &ferry.Job{TargetHostID: a.HostID}); err != nil || addr != "127.0.0.1:7781" {
		t.Errorf("target address of a: %q %v", addr, err)
	}
	if addr, err := eng.targetAddr(ctx, &ferry.Job{TargetHostID: b.HostID}); err != nil || addr != "192.0.2.10:"+DefaultAgentPort {
		t.Errorf("target address of b (no advertised address): %q %v", addr, err)
	}

	client, err := AgentClient(a.CertPEM, a.KeyPEM, a.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	facts := testFacts("a")
	facts.DataAddr = "[2001:db8::1]:7790"
	reply, err := Heartbeat(ctx, client, ts.URL, &facts, ferry.HostMetrics{})
	if err != nil || reply.HostID != a.HostID || len(reply.RevokedSerials) != 0 {
		t.Fatalf("heartbeat: %+v %v", reply, err)
	}
	if h, _ := e.db.FindHostByID(ctx, a.HostID); h.DataAddr != "[2001:db8::1]:7790" {
		t.Errorf("heartbeat did not update the data address: %q", h.DataAddr)
	}
	facts.DataAddr = "nonsense"
	if _, err := Heartbeat(ctx, client, ts.URL, &facts, ferry.HostMetrics{}); err == nil {
		t.Error("heartbeat with a bad data address accepted")
	}
	e.expect(e.do("POST", "/api/v1/hosts/"+b.HostID+"/revoke", e.token["admin"], nil), http.StatusOK)
	hb, _ := e.db.FindHostByID(ctx, b.HostID)
	reply, err = Heartbeat(ctx, client, ts.URL, nil, ferry.HostMetrics{})
	if err != nil || !slices.Equal(reply.RevokedSerials, []string{hb.CertSerial}) {
		t.Fatalf("revoked serials %+v (want [%s]): %v", reply, hb.CertSerial, err)
	}
}
