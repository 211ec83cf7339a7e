package services

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// Postgres is a throwaway PostgreSQL cluster.
type Postgres struct {
	*Process
	Port int
	// DSN connects as the superuser "postgres" to database "postgres".
	DSN string
}

// postgresBin finds the newest PostgreSQL server installation.
func postgresBin() (string, error) {
	if v := os.Getenv("FERRY_PG_BIN"); v != "" {
		return v, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server not found under /usr/lib/postgresql: install the postgresql package (go tool task deps) or set FERRY_PG_BIN")
}

// StartPostgres initialises a cluster under dir and starts it on a free
// loopback port. PostgreSQL refuses to run as root, so when root it runs as
// the "postgres" system user that the Debian package creates.
func (s *Set) StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.Dir, "postgres")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user (from the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(s.Dir, "postgres.log")
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	p, err := start("postgres", cmd, logPath)
	if err != nil {
		return nil, err
	}
	s.add(p)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(ctx, p, addr, 60*time.Second, logPath); err != nil {
		return nil, err
	}
	return &Postgres{Process: p, Port: port,
		DSN: fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", addr)}, nil
}
