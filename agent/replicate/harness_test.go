package replicate_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
)

// TestMain lets the test binary run as an agent daemon in a child process
// (FERRY_TEST_AGENT=DATADIR), so tests can kill -9 a real agent process.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FERRY_TEST_AGENT"); dir != "" {
		os.Exit(runChildAgent(dir))
	}
	os.Exit(m.Run())
}

func quietLog() *slog.Logger {
	lvl := slog.LevelError
	if os.Getenv("FERRY_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func runChildAgent(dir string) int {
	id, err := pki.LoadOrIssue(os.Getenv("FERRY_TEST_CA"), filepath.Join(dir, "identity"), "child", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	a, err := agent.New(agent.Config{Listen: "127.0.0.1:0", DataDir: dir, ServerTLS: id.ServerTLS(), ClientTLS: id.ClientTLS(),
		Log: quietLog()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening on " + a.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := a.Serve(ctx); err != nil {
		return 1
	}
	return 0
}

func newCA(t testing.TB) string {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca")
	if err := pki.InitCA(ca, "test CA"); err != nil {
		t.Fatal(err)
	}
	return ca
}

func controllerFor(t testing.TB, ca string) *agent.Controller {
	t.Helper()
	id, err := pki.LoadOrIssue(ca, filepath.Join(t.TempDir(), "cli"), "cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agent.Controller{TLS: id.ClientTLS()}
}

// childAgent is an agent process.
type childAgent struct {
	cmd  *exec.Cmd
	addr string
}

func spawnAgent(t *testing.T, ca, dir string) *childAgent {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FERRY_TEST_AGENT="+dir, "FERRY_TEST_CA="+ca)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("child agent printed no address")
	}
	c := &childAgent{cmd: cmd, addr: strings.TrimPrefix(sc.Text(), "listening on ")}
	go func() {
		for sc.Scan() {
		}
	}()
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	return c
}

func (c *childAgent) kill9() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// proxy forwards TCP connections to a backend that can be changed, and cuts
// every open connection on demand.
type proxy struct {
	ln net.Listener

	mu      sync.Mutex
	backend string
	conns   map[net.Conn]bool
}

func newProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setBackend(b string) {
	p.mu.Lock()
	p.backend = b
	p.mu.Unlock()
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		b := p.backend
		p.mu.Unlock()
		d, err := net.Dial("tcp", b)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[d] = true, true
		p.mu.Unlock()
		go func() { io.Copy(d, c); d.Close(); c.Close() }()
		go func() { io.Copy(c, d); d.Close(); c.Close() }()
	}
}

// cut closes every connection open through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
