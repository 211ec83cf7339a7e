package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/integration/faultproxy"
	"github.com/ferry-migrate/ferry/integration/harness"
	"github.com/ferry-migrate/ferry/integration/netns"
	"github.com/ferry-migrate/ferry/integration/services"
)

// service is one restartable process of the migration's world.
type service struct {
	t    *testing.T
	name string
	bin  string
	args []string
	host *netns.Host // nil: the root namespace
	proc *harness.Proc
}

func (s *service) start() {
	s.t.Helper()
	bin, args := s.bin, s.args
	if s.host != nil {
		bin, args = "ip", append([]string{"netns", "exec", s.host.NS, s.bin}, s.args...)
	}
	s.proc = harness.Start(s.t, nil, bin, args...)
}

// crash kills the process with SIGKILL, as a power cut of that process would.
func (s *service) crash() { s.proc.Kill() }

// cluster is the control plane in the root namespace and an agent on each
// test host, with a fault proxy on the data path into dst.
type cluster struct {
	t        *testing.T
	dir      string
	ferry    string
	topo     *netns.Topology
	temporal *service
	server   *service
	worker   *service
	agents   map[string]*service
	proxy    *faultproxy.Proxy
	api      *api
	apiURL   string // plain HTTP, root namespace only (the test's own calls)
	agentURL string // HTTPS on the bridge, for agents
	caDir    string
	hostIDs  map[string]string
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s", url, timeout)
}

func waitTCP(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %s", addr, timeout)
}

// newCluster starts Temporal (its own dev server, persistent so that it
// survives kill -9), ferry server and ferry worker on PostgreSQL, and enrolls
// an agent on each of the hosts src and dst.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), ferry: harness.FerryBinary(t), agents: map[string]*service{}, hostIDs: map[string]string{}}
	tbin := harness.Env(t, "FERRY_TEMPORAL_BIN")
	dsn := harness.FreshPostgres(t)
	c.topo = netns.New(t, "src", "dst")
	gw := c.topo.Gateway

	// The dev server's services dial each other on 127.0.0.1, so it must
	// bind every address rather than only the bridge's.
	tport := freePort(t, gw)
	c.temporal = &service{t: t, name: "temporal", bin: tbin,
		args: services.TemporalArgs("0.0.0.0", tport, 0, filepath.Join(c.dir, "temporal.db"), true)}
	c.temporal.start()
	taddr := fmt.Sprintf("%s:%d", gw, tport)
	waitTCP(t, taddr, 90*time.Second)

	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	httpsAddr := fmt.Sprintf("%s:%d", gw, freePort(t, gw))
	c.caDir = filepath.Join(c.dir, "ca")
	creds := filepath.Join(c.dir, "initial-credentials")
	c.server = &service{t: t, name: "server", bin: c.ferry, args: []string{"server", "--log-format", "json",
		"--database-dsn", dsn, "--temporal-address", taddr, "--http-listen", httpAddr, "--https-listen", httpsAddr,
		"--ca-dir", c.caDir, "--initial-credentials", creds}}
	c.server.start()
	c.apiURL, c.agentURL = "http://"+httpAddr, "https://"+httpsAddr
	waitHTTP(t, c.apiURL+"/healthz", 60*time.Second)

	c.worker = &service{t: t, name: "worker", bin: c.ferry, args: []string{"worker", "--log-format", "json",
		"--database-dsn", dsn, "--temporal-address", taddr}}
	c.worker.start()

	c.api = newAPI(t, c.apiURL)
	c.api.login("admin", initialPassword(t, creds, "admin"))

	// dst's data channel is reached through the fault proxy.
	dst := c.topo.Hosts["dst"]
	p, err := faultproxy.Listen(gw+":0", dst.Addr+":7780")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c.proxy = p
	for _, name := range []string{"src", "dst"} {
		h := c.topo.Hosts[name]
		var tok struct {
			Token string `json:"token"`
		}
		c.api.call("POST", "/api/v1/hosts/enrollment-tokens", map[string]any{"description": "e2e " + name}, http.StatusCreated, &tok)
		advertise := h.Addr + ":7780"
		if name == "dst" {
			advertise = p.Addr()
		}
		a := &service{t: t, name: "agent-" + name, bin: c.ferry, host: h, args: []string{"agent", "--log-format", "json",
			"--enroll", c.agentURL, "--token", tok.Token, "--ca-cert", filepath.Join(c.caDir, "ca.crt"),
			"--data-dir", filepath.Join(c.dir, "agent-"+name), "--name", name,
			"--listen", h.Addr + ":7780", "--advertise", advertise, "--temporal-address", taddr}}
		a.start()
		c.agents[name] = a
	}
	c.waitHostsOnline(2 * time.Minute)
	return c
}

// waitHostsOnline waits until both agents are enrolled and online, and
// records their host IDs.
func (c *cluster) waitHostsOnline(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var hosts struct {
			Items []struct {
				ID     string `json:"id"`
				Name   string `json:"name"`
				Status string `json:"status"`
			} `json:"items"`
		}
		c.api.call("GET", "/api/v1/hosts", nil, http.StatusOK, &hosts)
		online := 0
		for _, h := range hosts.Items {
			if h.Status == "online" {
				c.hostIDs[h.Name] = h.ID
				online++
			}
		}
		if online >= 2 && c.hostIDs["src"] != "" && c.hostIDs["dst"] != "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.t.Fatalf("agents not online after %s: %v\nsrc agent:\n%s\ndst agent:\n%s", timeout, c.hostIDs,
		c.agents["src"].proc.Output(), c.agents["dst"].proc.Output())
}

func initialPassword(t *testing.T, path, user string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if p, ok := strings.CutPrefix(line, user+":"); ok {
					return p
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no initial password for %s in %s", user, path)
	return ""
}
