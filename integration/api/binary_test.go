package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/integration/harness"
	"github.com/ferry-migrate/ferry/store"
)

// TestBinaryServerAndCLI runs the ferry binary: `ferry server` on a fresh
// PostgreSQL database, then the client commands against it as a user would.
func TestBinaryServerAndCLI(t *testing.T) {
	dsn := harness.FreshPostgres(t)
	temporal := harness.Env(t, "FERRY_TEST_TEMPORAL_ADDR")
	bin := os.Getenv("FERRY_TEST_FERRY_BIN") // a prebuilt binary, else build ./cmd/ferry
	if bin == "" {
		bin = harness.FerryBinary(t)
	}
	if err := exec.Command(bin, "login", "--help").Run(); err != nil {
		t.Skip("needs the client commands (login, hosts, jobs) registered in cmd/ferry/main.go")
	}
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	creds, err := apiserver.Bootstrap(ctx, db)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	for _, c := range creds {
		pw[c.User] = c.Password
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	harness.Start(t, nil, bin, "server", "--database-dsn", dsn, "--http-listen", addr, "--temporal-address", temporal,
		"--task-queue", "ferry-control-"+filepath.Base(dir),
		"--ca-dir", filepath.Join(dir, "ca"))
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry server did not answer on %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The must-show, on the binary: no credentials, no jobs.
	resp, err := http.Get(url + "/api/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated GET /api/v1/jobs: %d", resp.StatusCode)
	}

	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HOME=" + dir}
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	login := func(user string) {
		t.Helper()
		newPW := pw[user] + "-Cli7"
		if out, err := run(pw[user]+"\n"+newPW+"\n", "login", "--server", url, "-u", user, "--password-stdin"); err != nil {
			t.Fatalf("ferry login %s: %v\n%s", user, err, out)
		}
		pw[user] = newPW
	}
	login("auditor")
	out, err := run("", "jobs", "create", "--name", "x", "--source-host", "aaaaaaaaaaaaaaaa", "--source-path", "/a",
		"--target-host", "bbbbbbbbbbbbbbbb", "--target-path", "/b")
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("auditor's ferry jobs create: %v\n%s", err, out)
	}
	login("admin")
	out, err = run("", "hosts", "enroll-token", "--json")
	if err != nil {
		t.Fatalf("ferry hosts enroll-token: %v\n%s", err, out)
	}
	var tok apiserver.CreateEnrollmentTokenOutput
	if err := json.Unmarshal([]byte(out), &tok.Body); err != nil || !strings.HasPrefix(tok.Body.Token, "fet_") {
		t.Fatalf("enroll-token output %q: %v", out, err)
	}
	if out, err := run("", "jobs", "list", "--json"); err != nil || !strings.Contains(out, `"total": 0`) {
		t.Errorf("ferry jobs list --json: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(dir, "config", "ferry", "credentials"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v %v", fi, err)
	}
}
