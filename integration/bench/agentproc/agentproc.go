// Package agentproc starts and stops `ferry agent` processes for the
// benchmark commands (integration/bench and integration/bench/sync): the
// agents run as processes of their own, as in production.
package agentproc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Start runs `bin agent` listening on listen ("127.0.0.1:0" for any port)
// with its data directory and CA directory and log level, and returns once
// the agent printed the address it listens on. The agent's stderr goes to
// this process's.
func Start(bin, listen, dataDir, ca, logLevel string) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin, "agent", "--listen", listen, "--data-dir", dataDir, "--ca", ca, "--log-level", logLevel)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, addr, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, "", fmt.Errorf("ferry agent (%s) printed no address", dataDir)
}

// Stop ends a started process with SIGTERM and waits for it, with SIGKILL
// after grace; cmd.ProcessState then holds its resource usage.
func Stop(cmd *exec.Cmd, grace time.Duration) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
}
