// Command testenv starts the real services Ferry's tests need — PostgreSQL,
// the Temporal dev server, MinIO and mailpit — on free loopback ports, runs a
// command with their addresses in FERRY_TEST_* environment variables, and
// stops them all when the command ends, fails or is interrupted.
//
//	go run ./integration/services/testenv -- go test ./...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/integration/services"
	"golang.org/x/sync/errgroup"
)

func main() {
	os.Exit(run())
}

func run() int {
	keep := flag.Bool("keep-logs", false, "keep the services' directory (logs, data) after the run")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: testenv [-keep-logs] -- COMMAND [ARGS...]\n\n"+
			"Starts PostgreSQL, Temporal, MinIO and mailpit on free loopback ports, runs COMMAND\n"+
			"with FERRY_TEST_* variables naming them, then stops them all.\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		flag.Usage()
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	dir, err := os.MkdirTemp("", "ferry-testenv-")
	if err != nil {
		log.Error("temp dir", "err", err)
		return 1
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		log.Error("temp dir", "err", err)
		return 1
	}
	set := &services.Set{Dir: dir, Log: log}
	defer func() {
		set.StopAll()
		if *keep {
			log.Info("services' logs kept", "dir", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	env, err := startAll(ctx, set, log)
	if err != nil {
		log.Error("starting test services failed", "err", err)
		return 1
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-waited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			err = <-waited
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

// startAll starts the services in parallel and returns their environment.
func startAll(ctx context.Context, set *services.Set, log *slog.Logger) ([]string, error) {
	var (
		pg *services.Postgres
		tp *services.Temporal
		mi *services.MinIO
		mp *services.Mailpit
	)
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { pg, err = set.StartPostgres(gctx); return })
	g.Go(func() (err error) { tp, err = set.StartTemporal(gctx); return })
	g.Go(func() (err error) { mi, err = set.StartMinIO(gctx); return })
	g.Go(func() (err error) { mp, err = set.StartMailpit(gctx); return })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	log.Info("test services ready", "took", time.Since(t0).Round(time.Millisecond),
		"postgres", pg.DSN, "temporal", tp.HostPort, "minio", mi.Endpoint, "smtp", mp.SMTPAddr)
	return []string{
		"FERRY_TEST_POSTGRES_DSN=" + pg.DSN,
		"FERRY_TEST_TEMPORAL_ADDR=" + tp.HostPort,
		"FERRY_TEMPORAL_BIN=" + tp.Bin,
		"FERRY_TEST_MINIO_ENDPOINT=" + mi.Endpoint,
		"FERRY_TEST_MINIO_ACCESS_KEY=" + mi.AccessKey,
		"FERRY_TEST_MINIO_SECRET_KEY=" + mi.SecretKey,
		"FERRY_TEST_SMTP_ADDR=" + mp.SMTPAddr,
		"FERRY_TEST_MAILPIT_URL=" + mp.APIURL,
	}, nil
}
