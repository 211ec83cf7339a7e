package services

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"
)

// Mailpit is a running mailpit SMTP server with its HTTP API.
type Mailpit struct {
	*Process
	SMTPAddr string // host:port accepting SMTP
	APIURL   string // http://host:port of the web UI and API
}

// StartMailpit starts mailpit on free loopback ports.
func (s *Set) StartMailpit(ctx context.Context) (*Mailpit, error) {
	bin, err := FindBinary("FERRY_MAILPIT_BIN", "mailpit")
	if err != nil {
		return nil, err
	}
	sport, err := FreePort()
	if err != nil {
		return nil, err
	}
	hport, err := FreePort()
	if err != nil {
		return nil, err
	}
	m := &Mailpit{SMTPAddr: fmt.Sprintf("127.0.0.1:%d", sport), APIURL: fmt.Sprintf("http://127.0.0.1:%d", hport)}
	logPath := filepath.Join(s.Dir, "mailpit.log")
	cmd := exec.Command(bin, "--smtp", m.SMTPAddr, "--listen", fmt.Sprintf("127.0.0.1:%d", hport),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--quiet")
	p, err := start("mailpit", cmd, logPath)
	if err != nil {
		return nil, err
	}
	s.add(p)
	m.Process = p
	if err := waitTCP(ctx, p, m.SMTPAddr, 30*time.Second, logPath); err != nil {
		return nil, err
	}
	return m, nil
}
