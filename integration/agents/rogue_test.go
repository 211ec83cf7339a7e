package agents

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/agent/wire"
	"github.com/ferry-migrate/ferry/apiserver"
)

// loginAs logs a built-in account in with its initial password (changing
// it, as the first login must) and returns its bearer token.
func (c *cluster) loginAs(user string) string {
	c.t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "initial-credentials"))
	if err != nil {
		c.t.Fatal(err)
	}
	var pw string
	for sc := bufio.NewScanner(bytes.NewReader(data)); sc.Scan(); {
		if u, p, ok := strings.Cut(sc.Text(), ":"); ok && u == user {
			pw = p
		}
	}
	if pw == "" {
		c.t.Fatalf("no %s in the initial credentials", user)
	}
	admin := c.token
	defer func() { c.token = admin }()
	c.token = ""
	var sess apiserver.SessionBody
	c.mustCall("POST", "/api/v1/auth/login", map[string]string{"username": user, "password": pw}, &sess, http.StatusOK)
	c.token = sess.Token
	c.mustCall("POST", "/api/v1/auth/password", map[string]string{"currentPassword": pw, "newPassword": pw + "-Rogue7"}, nil, http.StatusNoContent, http.StatusOK)
	return sess.Token
}

// rogueSend plays a malicious but certificate-holding peer against the
// target agent at addr: it registers a receive job into root, attaches to
// it and names one entry at path. It returns the error the target agent
// answered the job with.
func rogueSend(t *testing.T, addr string, tlsID *pki.Identity, jobID, root, path string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl, err := agent.Dial(ctx, addr, tlsID.ClientTLS())
	if err != nil {
		t.Fatalf("rogue dial: %v", err)
	}
	defer ctl.Close()
	if err := ctl.Send(&wire.ReceiveJob{JobID: jobID, Root: root}); err != nil {
		t.Fatal(err)
	}
	acc, err := wire.Expect[*wire.JobAccepted](ctl)
	if err != nil {
		t.Fatalf("receive job not accepted: %v", err)
	}
	data, err := agent.Dial(ctx, addr, tlsID.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	if err := data.Send(&wire.Attach{JobID: jobID, Token: acc.Token}); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.Expect[*wire.JobAccepted](data); err != nil {
		t.Fatalf("attach: %v", err)
	}
	mtime := int64(1e18)
	data.Send(&wire.EntryBatch{Entries: []wire.FileEntry{
		{ID: 1000, Entry: fsys.Entry{Path: "", Type: fsys.TypeDir, Mode: 0o755, MtimeNs: mtime}},
		{ID: 1, Entry: fsys.Entry{Path: path, Type: fsys.TypeFile, Mode: 0o644, Size: 4, MtimeNs: mtime}},
	}})
	data.Send(&wire.ScanEnd{})
	// Answer what the receiver asks for, as the mirror's hostile-sender
	// tests do, until it ends the exchange (a refusal closes it).
	for {
		m, err := data.ReadMsg()
		if err != nil {
			break
		}
		nb, ok := m.(*wire.NeedBatch)
		if !ok {
			break
		}
		for _, n := range nb.Items {
			if n.Action == wire.NeedSkip {
				continue
			}
			data.WriteData(ctx, n.ID, 0, []byte("EVIL"))
			data.WriteMsg(&wire.FileEnd{ID: n.ID, Status: wire.FileOK, Size: 4})
		}
		if nb.End {
			data.Send(&wire.SendEnd{})
			break
		}
	}
	_, err = wire.Expect[*wire.JobDone](ctl)
	return err
}

// TestRoguePeerRefusedAndAudited: a peer holding a certificate from the
// control plane's CA (so the data channel lets it in) sends a real `ferry
// agent` paths escaping the job's root. The agent refuses the job, nothing
// outside the root changes, and the agent reports the refusal to the
// control plane: the audit log, read by the auditor, holds one denied
// agent-path-refused record per attempt naming the job, the rogue's address
// and the path, and its hash chain verifies.
func TestRoguePeerRefusedAndAudited(t *testing.T) {
	c := newCluster(t)
	dst := c.startAgent("target")
	ca, err := pki.LoadCA(filepath.Join(c.dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("rogue", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := pki.NewIdentity(certPEM, keyPEM, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}

	base := t.TempDir()
	outside, root := filepath.Join(base, "outside"), filepath.Join(base, "root")
	for _, d := range []string{outside, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	canary := filepath.Join(outside, "canary")
	if err := os.WriteFile(canary, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	attempts := []struct{ job, path string }{
		{"rogue-dotdot", "../outside/canary"},
		{"rogue-absolute", canary},
		{"rogue-forged", "../outside/x\n2026-01-01 admin:create-user:success"},
	}
	for _, a := range attempts {
		err := rogueSend(t, dst.listen, rogue, a.job, root, a.path)
		if !errors.Is(err, wire.ErrBadPath) {
			t.Errorf("%s: the target answered %v, want a bad-path refusal", a.job, err)
		}
	}
	if b, err := os.ReadFile(canary); err != nil || string(b) != "original" {
		t.Fatalf("the file outside the root changed: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Fatalf("something was written outside the root: %v", ents)
	}

	auditor := c.loginAs("auditor")
	admin := c.token
	c.token = auditor
	defer func() { c.token = admin }()
	var page apiserver.AuditListOutput
	waitFor(t, "the refusals in the audit log", 20*time.Second, func() bool {
		c.mustCall("GET", "/api/v1/audit?action="+apiserver.AuditActionPathRefused+"&order=asc", nil, &page.Body, http.StatusOK)
		return len(page.Body.Items) >= len(attempts)
	})
	if len(page.Body.Items) != len(attempts) {
		t.Fatalf("%d refusal records for %d attempts", len(page.Body.Items), len(attempts))
	}
	var targets []string
	for _, r := range page.Body.Items {
		t.Logf("audit: %s %s %s from %s: %s", r.Actor, r.Action, r.Target, r.SourceAddr, r.Detail)
		targets = append(targets, r.Target)
		if r.Actor != "host:"+dst.hostID || r.Result != ferry.AuditDenied || !strings.HasPrefix(r.SourceAddr, "127.0.0.1:") ||
			!strings.Contains(r.Detail, `rogue`) || strings.ContainsAny(r.Detail, "\n\r") {
			t.Errorf("audit record %+v", r)
		}
	}
	for _, a := range attempts {
		if !slices.Contains(targets, "jobs:"+a.job) {
			t.Errorf("no refusal record for %s in %v", a.job, targets)
		}
	}
	if !strings.Contains(page.Body.Items[0].Detail, `../outside/canary`) {
		t.Errorf("the offending path is not in the record: %s", page.Body.Items[0].Detail)
	}
	var v apiserver.VerifyAuditOutput
	c.mustCall("GET", "/api/v1/audit/verify", nil, &v.Body, http.StatusOK)
	if !v.Body.Valid {
		t.Fatalf("audit chain: %+v", v.Body)
	}
}
