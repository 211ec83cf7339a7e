package agents

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
)

// TestAgentsJoinControlPlane: two `ferry agent --enroll` processes register
// their hosts (facts, advertised data address), a job created through the
// API runs between them to cutover_complete with identical trees, an agent
// restarted without enrollment flags keeps its host, and a revoked host's
// agent stops.
func TestAgentsJoinControlPlane(t *testing.T) {
	c := newCluster(t)

	// An agent that does not trust the server's CA must not hand it the token.
	foreign := filepath.Join(c.dir, "foreign-ca")
	if out, err := exec.Command(c.bin, "ca", "init", foreign).CombinedOutput(); err != nil {
		t.Fatalf("ferry ca init: %v\n%s", err, out)
	}
	out, err := exec.Command(c.bin, "agent", "--enroll", c.url, "--token", c.enrollmentToken(), "--ca-cert", filepath.Join(foreign, "ca.crt"),
		"--data-dir", filepath.Join(c.dir, "agent-foreign"), "--listen", freeAddr(t), "--temporal-address", c.temporal).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("enrollment against an untrusted server certificate: %v\n%s", err, out)
	}

	a, b := c.startAgent("a"), c.startAgent("b")
	for _, ag := range []*agentProc{a, b} {
		h := c.host(ag.hostID)
		if h.Status != ferry.HostOnline || h.DataAddr != ag.listen || h.Kernel == "" || h.CPUs <= 0 || h.MemoryBytes <= 0 ||
			len(h.Disks) == 0 || h.OS != "linux" || h.AgentVersion == "" {
			t.Fatalf("host %s as the API shows it: %+v", ag.hostID, h)
		}
		waitFor(t, "metrics of host "+ag.hostID, 10*time.Second, func() bool {
			m := c.host(ag.hostID).Metrics
			return m.MemoryTotalBytes > 0 && m.MemoryUsedBytes > 0 && !m.Time.IsZero()
		})
		for _, f := range []string{"node.key", "node.crt", "ca.crt", "enrollment.json"} {
			fi, err := os.Stat(filepath.Join(ag.dataDir, "enrollment", f))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("enrollment file %s: %v %v", f, fi, err)
			}
		}
	}

	srcPath, dstPath := filepath.Join(c.dir, "src", "app"), filepath.Join(c.dir, "dst", "app")
	makeTree(t, srcPath, 60)
	os.MkdirAll(filepath.Dir(dstPath), 0o755)
	id := c.createJob("join", a, b, srcPath, dstPath)
	c.cutover(id, 2*time.Minute)
	if d := differences(t, srcPath, dstPath); len(d) != 0 {
		t.Fatalf("%d differences after cutover: %v", len(d), d)
	}

	// A restart reuses the enrollment (restart checks the host ID).
	a.p.Stop(10 * time.Second)
	a.restart(t)

	// Revocation: b's agent learns it at its next heartbeat and stops, and
	// a's data channel refuses b's certificate once a's heartbeat brought
	// the revoked serials.
	bID, err := pki.LoadIdentity(filepath.Join(b.dataDir, "enrollment"))
	if err != nil {
		t.Fatal(err)
	}
	dialA := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := agent.Dial(ctx, a.listen, bID.ClientTLS())
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dialA(); err != nil {
		t.Fatalf("b dialing a before revocation: %v", err)
	}
	c.mustCall("POST", "/api/v1/hosts/"+b.hostID+"/revoke", nil, nil, http.StatusOK)
	waitFor(t, "a's data channel refusing revoked b", 15*time.Second, func() bool { return dialA() != nil })
	t.Logf("revoked b dialing a: %v", dialA())
	select {
	case <-b.p.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("the revoked host's agent still runs:\n%s", b.p.Output())
	}
	if !strings.Contains(b.p.Output(), "revoked") || b.p.Cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("revoked agent's exit %v:\n%s", b.p.Cmd.ProcessState, b.p.Output())
	}
}
