package services

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/workflows"
)

// Temporal is a running Temporal dev server.
type Temporal struct {
	*Process
	Bin      string
	HostPort string // frontend gRPC address
	UIPort   int
}

// TemporalArgs returns the arguments of `temporal server start-dev` for the
// given ports, with Ferry's search attributes registered.
func TemporalArgs(ip string, port, uiPort int, dbFile string, headless bool) []string {
	args := []string{"server", "start-dev", "--ip", ip, "--port", itoa(port), "--log-level", "warn"}
	if headless {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-ip", ip, "--ui-port", itoa(uiPort))
	}
	if dbFile != "" {
		args = append(args, "--db-filename", dbFile)
	}
	for _, sa := range workflows.SearchAttributes {
		args = append(args, "--search-attribute", sa.Name+"="+sa.Type)
	}
	return args
}

// StartTemporal starts the Temporal dev server (in-memory, headless) on a free
// loopback port.
func (s *Set) StartTemporal(ctx context.Context) (*Temporal, error) {
	bin, err := FindBinary("FERRY_TEMPORAL_BIN", "temporal")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(s.Dir, "temporal.log")
	cmd := exec.Command(bin, TemporalArgs("127.0.0.1", port, 0, "", true)...)
	p, err := start("temporal", cmd, logPath)
	if err != nil {
		return nil, err
	}
	s.add(p)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(ctx, p, addr, 90*time.Second, logPath); err != nil {
		return nil, err
	}
	return &Temporal{Process: p, Bin: bin, HostPort: addr}, nil
}
