package jobs

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
)

var (
	procsOnce sync.Once
	procsBin  string
	procsErr  error
	procsDir  string
)

// buildProcs builds the procs command once per test binary.
func buildProcs(t *testing.T) string {
	t.Helper()
	procsOnce.Do(func() {
		procsDir, procsErr = os.MkdirTemp("", "ferry-procs-")
		if procsErr != nil {
			return
		}
		procsBin = filepath.Join(procsDir, "procs")
		out, err := exec.Command("go", "build", "-o", procsBin, "./procs").CombinedOutput()
		if err != nil {
			procsErr = fmt.Errorf("go build ./procs: %v\n%s", err, out)
		}
	})
	if procsErr != nil {
		t.Fatal(procsErr)
	}
	return procsBin
}

// proc is a running procs process that the test may kill -9 and restart
// with the same arguments.
type proc struct {
	t    *testing.T
	name string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args}
	p.start()
	t.Cleanup(p.kill9)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	cmd := exec.Command(buildProcs(p.t), p.args...)
	cmd.Stderr = &prefixWriter{t: p.t, prefix: p.name + ": "}
	out, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready") {
				ready <- sc.Text()
			}
		}
	}()
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(p.done) }()
	select {
	case <-ready:
	case <-p.done:
		p.t.Fatalf("%s exited before it was ready", p.name)
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s not ready after 60 s", p.name)
	}
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (p *proc) kill9() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "procs:") || strings.HasPrefix(line, "panic") {
			w.t.Log(w.prefix + line)
		}
	}
	return len(b), nil
}

// procHost is a host whose agent and host worker run as one process.
type procHost struct {
	ID   string
	Root string
	Addr string
	proc *proc
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (cl *cluster) addProcHost(name string) *procHost {
	t := cl.t
	t.Helper()
	h := &procHost{ID: ferry.NewID(), Root: t.TempDir(), Addr: freeAddr(t)}
	if err := cl.db.CreateHost(context.Background(), &ferry.Host{ID: h.ID, Name: name + "-" + h.ID, OS: "linux"}); err != nil {
		t.Fatal(err)
	}
	h.proc = startProc(t, name, "host", "-temporal", cl.addr, "-ca", cl.ca, "-data-dir", t.TempDir(),
		"-host-id", h.ID, "-listen", h.Addr, "-checkpoint-bytes", fmt.Sprint(4<<20))
	return h
}

func (h *procHost) path(rel ...string) string {
	return filepath.Join(append([]string{h.Root}, rel...)...)
}

func (cl *cluster) startControlProc() *proc {
	return startProc(cl.t, "control", "control", "-temporal", cl.addr, "-dsn", cl.dsn, "-task-queue", cl.tq)
}

// treeBytes sums the sizes of the regular files under dir (temporary files
// of a transfer in progress included).
func treeBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
