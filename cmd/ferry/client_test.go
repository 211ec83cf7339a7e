package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alexedwards/argon2id"
	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/store"
)

// cliEnv is a real API server on SQLite and a config directory of its own.
type cliEnv struct {
	t     *testing.T
	db    *store.DB
	url   string
	creds map[string]string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	db, err := store.Open(ctx, filepath.Join(dir, "ferry.db"))
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
	if err := pki.InitCA(filepath.Join(dir, "ca"), "test"); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := apiserver.New(apiserver.Config{DB: db, CA: ca, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PasswordHashing: &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e := &cliEnv{t: t, db: db, url: ts.URL, creds: map[string]string{}}
	for _, c := range creds {
		e.creds[c.User] = c.Password
	}
	return e
}

// run executes a client command line; stdin feeds prompts.
func (e *cliEnv) run(stdin string, args ...string) (string, error) {
	e.t.Helper()
	root := &cobra.Command{Use: "ferry", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newLoginCmd(), newLogoutCmd(), newHostsCmd(), newJobsCmd())
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func (e *cliEnv) mustRun(stdin string, args ...string) string {
	e.t.Helper()
	out, err := e.run(stdin, args...)
	if err != nil {
		e.t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestCLILoginHostsJobs(t *testing.T) {
	e := newCLIEnv(t)
	ctx := context.Background()
	// First login of a built-in account: the password must change.
	e.mustRun(e.creds["admin"]+"\nAnother-Passw0rd-9\n", "login", "--server", e.url, "-u", "admin", "--password-stdin")
	path, _ := credentialsPath()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode %v, want 0600", fi.Mode().Perm())
	}
	saved, _ := loadCredentials()
	if saved.Server != e.url || !strings.HasPrefix(saved.Token, "fst_") || saved.User != "admin" {
		t.Fatalf("saved credentials %+v", saved)
	}
	// A wrong password is refused with the server's problem.
	if _, err := e.run("nope\n", "login", "-u", "admin", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}

	// An enrollment token, used by two agents.
	var tok apiserver.CreateEnrollmentTokenOutput
	if err := json.Unmarshal([]byte(e.mustRun("", "hosts", "enroll-token", "--ttl", "10m", "--json")), &tok.Body); err != nil {
		t.Fatal(err)
	}
	facts := apiserver.HostFacts{Hostname: "src", OS: "linux", Arch: "amd64", AgentVersion: "0.1.0"}
	src, err := apiserver.EnrollWith(ctx, httptestClient(), e.url, tok.Body.Token, "", facts)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(e.mustRun("", "hosts", "enroll-token", "--json")), &tok.Body)
	facts.Hostname = "dst"
	dst, err := apiserver.EnrollWith(ctx, httptestClient(), e.url, tok.Body.Token, "", facts)
	if err != nil {
		t.Fatal(err)
	}
	out := e.mustRun("", "hosts", "list")
	if !strings.Contains(out, src.HostID) || !strings.Contains(out, dst.HostID) || !strings.Contains(out, "2 of 2 hosts") {
		t.Errorf("hosts list:\n%s", out)
	}

	// A job with options from flags.
	var j apiserver.JobView
	out = e.mustRun("", "jobs", "create", "--json", "--name", "web", "--source-host", src.HostID, "--source-path", "/srv/www",
		"--target-host", dst.HostID, "--target-path", "/srv/www", "--exclude", "*.tmp", "--compression", "fast",
		"--lag-threshold", "30s", "--pre-cutover", "systemctl stop nginx", "--post-cutover", "!systemctl start nginx")
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if j.Compression != "fast" || j.LagThresholdSecs != 30 || len(j.Excludes) != 1 || j.Cutover.PreCutoverHook == nil ||
		len(j.Cutover.PostCutoverActions) != 1 || !j.Cutover.PostCutoverActions[0].MustSucceed {
		t.Errorf("created job %+v", j)
	}
	// Invalid options come back as field-level problems.
	_, err = e.run("", "jobs", "create", "--name", "bad", "--source-host", src.HostID, "--source-path", "relative",
		"--target-host", dst.HostID, "--target-path", "/t")
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "sourcePaths[0]") {
		t.Errorf("invalid job: %v", err)
	}
	out = e.mustRun("", "jobs", "list", "--state", "pending")
	if !strings.Contains(out, j.ID) || !strings.Contains(out, "1 of 1 jobs") {
		t.Errorf("jobs list:\n%s", out)
	}
	// Without a workflow engine the action is refused, not crashed.
	if _, err := e.run("", "jobs", "start", j.ID); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("start without engine: %v", err)
	}

	// watch follows the stream to the end; the exit status says how it ended.
	if _, err := e.db.SetJobState(ctx, j.ID, ferry.JobCutoverComplete, "", "system"); err != nil {
		t.Fatal(err)
	}
	out = e.mustRun("", "jobs", "watch", j.ID, "--json")
	if !strings.Contains(out, `"state":"cutover_complete"`) {
		t.Errorf("watch --json: %q", out)
	}
	if _, err := e.db.SetJobState(ctx, j.ID, ferry.JobFailed, "disk full", "system"); err != nil {
		t.Fatal(err)
	}
	_, err = e.run("", "jobs", "watch", j.ID)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(ee.msg, "disk full") {
		t.Errorf("watch of a failed job: %v", err)
	}

	e.mustRun("", "hosts", "revoke", src.HostID)
	e.mustRun("", "jobs", "delete", j.ID)
	e.mustRun("", "logout")
	if _, err := e.run("", "jobs", "list"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("after logout: %v", err)
	}
}

func TestReadProgress(t *testing.T) {
	stream := "id: 1\nevent: status\ndata: {\"jobId\":\"j\",\"state\":\"mirroring\",\"progress\":{\"bytesDone\":5,\"bytesTotal\":10,\"rateBytesPerSecond\":2,\"etaSeconds\":3}}\n\n" +
		": comment\n\nid: 2\nevent: end\ndata: {\"jobId\":\"j\",\"state\":\"cutover_complete\"}\n\nid: 3\nevent: status\ndata: {}\n\n"
	var seen []ferry.JobState
	final, err := readProgress(strings.NewReader(stream), func(st *apiserver.JobStatus) { seen = append(seen, st.State) })
	if err != nil || final == nil || final.State != ferry.JobCutoverComplete || len(seen) != 2 {
		t.Fatalf("final %+v, seen %v, err %v", final, seen, err)
	}
	d := describeStatus(&apiserver.JobStatus{State: ferry.JobSyncing, Progress: apiserver.Progress{Phase: "sync", BytesDone: 1 << 30,
		BytesTotal: 2 << 30, RateBytesPerS: 50 << 20, ETASeconds: 20, LagSeconds: 0.5, BacklogEntries: 3, BacklogBytes: 4096}})
	for _, want := range []string{"syncing", "/s", "ETA 20s", "lag 0.5s", "backlog 3"} {
		if !strings.Contains(d, want) {
			t.Errorf("status line %q lacks %q", d, want)
		}
	}
	if _, err := readProgress(strings.NewReader("event: end\ndata: {not json}\n\n"), func(*apiserver.JobStatus) {}); err == nil {
		t.Error("bad data accepted")
	}
}

func httptestClient() *http.Client { return &http.Client{} }
