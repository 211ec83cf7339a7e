package services

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// MinIO is a running MinIO server (AGPL: run as a separate test service,
// never imported).
type MinIO struct {
	*Process
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
}

// StartMinIO starts a MinIO server on a free loopback port with a fresh data
// directory.
func (s *Set) StartMinIO(ctx context.Context) (*MinIO, error) {
	bin, err := FindBinary("FERRY_MINIO_BIN", "minio")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(s.Dir, "minio")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	m := &MinIO{Endpoint: fmt.Sprintf("127.0.0.1:%d", port), AccessKey: "ferrytest", SecretKey: "ferrytest-secret-key"}
	logPath := filepath.Join(s.Dir, "minio.log")
	cmd := exec.Command(bin, "server", data, "--address", m.Endpoint,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", cport), "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	p, err := start("minio", cmd, logPath)
	if err != nil {
		return nil, err
	}
	s.add(p)
	m.Process = p
	if err := waitTCP(ctx, p, m.Endpoint, 60*time.Second, logPath); err != nil {
		return nil, err
	}
	// Listening is not ready: wait for the liveness endpoint.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("minio not ready on %s\n%s", m.Endpoint, tail(logPath, 2000))
}
