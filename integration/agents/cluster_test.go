// Package agents tests the real binaries together: `ferry server` on
// PostgreSQL, `ferry worker` and `ferry agent --enroll` processes that join
// the control plane, run jobs through the API, and survive kill -9.
//
//	go run ./integration/services/testenv -- go test -count=1 ./integration/agents/
package agents

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/integration/harness"
)

// cluster is a control plane of real processes: ferry server (HTTPS, a CA in
// a temporary directory, a fresh PostgreSQL database) and ferry worker.
type cluster struct {
	t        *testing.T
	bin      string
	dsn      string
	temporal string
	dir      string
	url      string // https://127.0.0.1:PORT
	caCert   string // the control plane's CA certificate file
	http     *http.Client
	token    string // admin's bearer token
	worker   *proc
}

// proc is a restartable child process.
type proc struct {
	t    *testing.T
	bin  string
	args []string
	p    *harness.Proc
}

func (p *proc) start() {
	p.t.Helper()
	p.p = harness.Start(p.t, nil, p.bin, p.args...)
}

// kill9 kills the process group with SIGKILL, as a crash would.
func (p *proc) kill9() { p.p.Kill() }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dsn: harness.FreshPostgres(t), temporal: harness.Env(t, "FERRY_TEST_TEMPORAL_ADDR"), dir: t.TempDir()}
	c.bin = os.Getenv("FERRY_TEST_FERRY_BIN")
	if c.bin == "" {
		c.bin = harness.FerryBinary(t)
	}
	httpsAddr := freeAddr(t)
	c.url = "https://" + httpsAddr
	caDir := filepath.Join(c.dir, "ca")
	c.caCert = filepath.Join(caDir, "ca.crt")
	creds := filepath.Join(c.dir, "initial-credentials")
	// Its own control task queue: other test packages may share this Temporal.
	queue := "ferry-control-" + filepath.Base(c.dir)
	srv := &proc{t: t, bin: c.bin, args: []string{"server", "--database-dsn", c.dsn, "--http-listen", "",
		"--https-listen", httpsAddr, "--ca-dir", caDir, "--temporal-address", c.temporal, "--initial-credentials", creds,
		"--task-queue", queue}}
	srv.start()
	c.waitHTTPS(srv)
	c.worker = &proc{t: t, bin: c.bin, args: []string{"worker", "--database-dsn", c.dsn, "--temporal-address", c.temporal,
		"--task-queue", queue}}
	c.worker.start()
	c.loginAdmin(creds)
	return c
}

// waitHTTPS waits for the server's HTTPS listener and then trusts its CA.
func (c *cluster) waitHTTPS(srv *proc) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if data, err := os.ReadFile(c.caCert); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(data) {
				c.http = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
				if resp, err := c.http.Get(c.url + "/healthz"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return
					}
				}
			}
		}
		select {
		case <-srv.p.Done():
			c.t.Fatalf("ferry server exited:\n%s", srv.p.Output())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ferry server did not answer on %s within 60s", c.url)
		}
	}
}

// loginAdmin logs in with the initial credentials and changes the
// password, as the built-in accounts must at first login.
func (c *cluster) loginAdmin(credsFile string) {
	c.t.Helper()
	data, err := os.ReadFile(credsFile)
	if err != nil {
		c.t.Fatal(err)
	}
	var pw string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if u, p, ok := strings.Cut(sc.Text(), ":"); ok && u == "admin" {
			pw = p
		}
	}
	if pw == "" {
		c.t.Fatalf("no admin in %s", credsFile)
	}
	var sess apiserver.SessionBody
	c.mustCall("POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": pw}, &sess, http.StatusOK)
	c.token = sess.Token
	c.mustCall("POST", "/api/v1/auth/password", map[string]string{"currentPassword": pw, "newPassword": pw + "-Agents7"}, nil, http.StatusNoContent, http.StatusOK)
}

// call runs an API operation as admin and returns the status code.
func (c *cluster) call(method, path string, in, out any) (int, string) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, body)
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, string(data)
}

func (c *cluster) mustCall(method, path string, in, out any, want ...int) {
	c.t.Helper()
	code, body := c.call(method, path, in, out)
	for _, w := range want {
		if code == w {
			return
		}
	}
	c.t.Fatalf("%s %s: %d %s", method, path, code, body)
}

func (c *cluster) enrollmentToken() string {
	c.t.Helper()
	var out apiserver.CreateEnrollmentTokenOutput
	c.mustCall("POST", "/api/v1/hosts/enrollment-tokens", map[string]any{"description": "integration/agents"}, &out.Body, http.StatusCreated)
	return out.Body.Token
}

// agentProc is a `ferry agent` process under the control plane.
type agentProc struct {
	*proc
	dataDir string
	listen  string
	hostID  string
}

var hostLine = regexp.MustCompile(`(?m)^host ([a-z2-7]{16})$`)

// startAgent enrolls a new agent with a fresh token and starts it; extra
// flags are appended.
func (c *cluster) startAgent(name string, extra ...string) *agentProc {
	c.t.Helper()
	a := &agentProc{dataDir: filepath.Join(c.dir, "agent-"+name), listen: freeAddr(c.t)}
	args := []string{"agent", "--enroll", c.url, "--token", c.enrollmentToken(), "--ca-cert", c.caCert, "--name", name,
		"--data-dir", a.dataDir, "--listen", a.listen, "--temporal-address", c.temporal, "--heartbeat-interval", "1s"}
	a.proc = &proc{t: c.t, bin: c.bin, args: append(args, extra...)}
	a.start()
	a.hostID = a.waitHostLine(c.t)
	// Later starts need no enrollment flags: the enrollment is kept in
	// the data dir.
	a.args = append([]string{"agent", "--data-dir", a.dataDir, "--listen", a.listen, "--temporal-address", c.temporal,
		"--heartbeat-interval", "1s"}, extra...)
	return a
}

// waitHostLine waits for the "host ID" line the agent prints once serving.
func (a *agentProc) waitHostLine(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := hostLine.FindStringSubmatch(a.p.Output()); m != nil && strings.Contains(a.p.Output(), "listening on ") {
			return m[1]
		}
		select {
		case <-a.p.Done():
			t.Fatalf("ferry agent exited:\n%s", a.p.Output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry agent did not come up in 30s:\n%s", a.p.Output())
		}
	}
}

// restart starts the agent again with its kept enrollment.
func (a *agentProc) restart(t *testing.T) {
	t.Helper()
	a.start()
	if id := a.waitHostLine(t); id != a.hostID {
		t.Fatalf("restarted agent is host %s, was %s", id, a.hostID)
	}
}

func (c *cluster) host(id string) apiserver.HostView {
	c.t.Helper()
	var h apiserver.HostView
	c.mustCall("GET", "/api/v1/hosts/"+id, nil, &h, http.StatusOK)
	return h
}

func (c *cluster) job(id string) apiserver.JobView {
	c.t.Helper()
	var j apiserver.JobView
	c.mustCall("GET", "/api/v1/jobs/"+id, nil, &j, http.StatusOK)
	return j
}

// createJob creates and starts a job from src:srcPath to dst:dstPath.
func (c *cluster) createJob(name string, src, dst *agentProc, srcPath, dstPath string) string {
	c.t.Helper()
	var j apiserver.JobView
	c.mustCall("POST", "/api/v1/jobs", map[string]any{"name": name, "sourceHostId": src.hostID, "sourcePaths": []string{srcPath},
		"targetHostId": dst.hostID, "targetPath": dstPath, "lagThresholdSeconds": 5}, &j, http.StatusCreated)
	c.waitState(j.ID, ferry.JobPending, 30*time.Second)
	c.mustCall("POST", "/api/v1/jobs/"+j.ID+"/actions/start", nil, nil, http.StatusOK)
	return j.ID
}

// waitState polls the job until it reaches want; failed or cancelled end
// the test.
func (c *cluster) waitState(id string, want ferry.JobState, timeout time.Duration) apiserver.JobView {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := c.job(id)
		if j.State == want {
			return j
		}
		if j.State == ferry.JobFailed || j.State == ferry.JobCancelled {
			c.t.Fatalf("job %s while waiting for %s: %s\nevents: %s", j.State, want, j.StateReason, c.eventLog(id))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job still %s after %s waiting for %s\nevents: %s", j.State, timeout, want, c.eventLog(id))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// cutover asks for the cutover once the job is ready and waits for
// cutover_complete.
func (c *cluster) cutover(id string, timeout time.Duration) {
	c.t.Helper()
	c.waitState(id, ferry.JobReadyForCutover, timeout)
	c.mustCall("POST", "/api/v1/jobs/"+id+"/actions/cutover", nil, nil, http.StatusOK)
	c.waitState(id, ferry.JobCutoverComplete, timeout)
}

func (c *cluster) events(id string, types ...string) []*ferry.JobEvent {
	c.t.Helper()
	q := "?limit=500"
	for _, ty := range types {
		q += "&type=" + ty
	}
	var out apiserver.JobEventListOutput
	c.mustCall("GET", "/api/v1/jobs/"+id+"/events"+q, nil, &out.Body, http.StatusOK)
	return out.Body.Items
}

func (c *cluster) eventLog(id string) string {
	var b strings.Builder
	var out apiserver.JobEventListOutput
	if code, _ := c.call("GET", "/api/v1/jobs/"+id+"/events?limit=500", nil, &out.Body); code != http.StatusOK {
		return "(events unavailable)"
	}
	for _, e := range out.Body.Items {
		fmt.Fprintf(&b, "\n  %s %s %s→%s %s", e.Time.Format("15:04:05.000"), e.Type, e.FromState, e.ToState, e.Message)
	}
	return b.String()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
