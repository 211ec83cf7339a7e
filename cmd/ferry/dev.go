package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/workflows"
)

// devOptions configures `ferry dev`.
type devOptions struct {
	varDir         string
	temporalBin    string
	temporalPort   int
	temporalUIPort int
	httpListen     string
	httpsListen    string
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run all of Ferry on this machine on the embedded defaults",
		Long: `Run all of Ferry on this machine, for development and evaluation:

  - the Temporal dev server, its web UI on http://127.0.0.1:8233, state kept
    under VAR-DIR/temporal.db;
  - the API server and web UI on http://127.0.0.1:8080 and https://127.0.0.1:8443
    (certificate issued by the dev certificate authority VAR-DIR/ca);
  - the control-plane worker;
  - two local agents enrolled with the control plane, listening on
    127.0.0.1:7781 and 127.0.0.1:7782, state under VAR-DIR/agents/{a,b}
    (their host IDs are in the "Ferry dev is up" line);
  - the embedded SQLite database VAR-DIR/ferry.db and a local directory
    VAR-DIR/objects as object store for metadata backups.

On the first start it creates the built-in accounts sysadmin, admin, operator
and auditor with random passwords, prints them once and writes them to
VAR-DIR/initial-credentials (mode 0600). Ctrl-C stops everything; the next
start keeps the state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o, slog.Default())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.varDir, "var-dir", "var/dev", "directory that keeps all state of the dev installation")
	f.StringVar(&o.temporalBin, "temporal-bin", "temporal", "the Temporal CLI binary (go tool task dev builds it into .tools/bin)")
	f.IntVar(&o.temporalPort, "temporal-port", 7233, "port of the Temporal frontend")
	f.IntVar(&o.temporalUIPort, "temporal-ui-port", 8233, "port of the Temporal web UI")
	f.StringVar(&o.httpListen, "http-listen", "127.0.0.1:8080", "address of the HTTP listener")
	f.StringVar(&o.httpsListen, "https-listen", "127.0.0.1:8443", "address of the HTTPS listener (self-signed certificate)")
	return cmd
}

func runDev(ctx context.Context, o devOptions, log *slog.Logger) error {
	if err := os.MkdirAll(o.varDir, 0o755); err != nil {
		return err
	}
	varDir, err := filepath.Abs(o.varDir)
	if err != nil {
		return err
	}
	tbin, err := exec.LookPath(o.temporalBin)
	if err != nil {
		return settingError("temporal-bin", fmt.Errorf("%s not found: run `go tool task dev`, which builds it", o.temporalBin))
	}
	cfg := controlConfig{
		DatabaseDSN:       "sqlite:" + filepath.Join(varDir, "ferry.db"),
		TemporalAddress:   fmt.Sprintf("127.0.0.1:%d", o.temporalPort),
		TemporalNamespace: "default",
		TaskQueue:         "ferry-control",
		TemporalUIURL:     fmt.Sprintf("http://127.0.0.1:%d", o.temporalUIPort),
		HTTPListen:        o.httpListen,
		HTTPSListen:       o.httpsListen,
		BackupDir:         filepath.Join(varDir, "objects"),
		CADir:             filepath.Join(varDir, "ca"),
	}
	if err := cfg.validateCore(); err != nil {
		return err
	}
	if err := cfg.validateServe(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.BackupDir, 0o755); err != nil {
		return err
	}

	// Temporal first: everything else needs it.
	temporal, err := startDevTemporal(ctx, tbin, varDir, o, log)
	if err != nil {
		return err
	}
	defer temporal.stop(log)

	db, err := openStore(ctx, cfg.DatabaseDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := bootstrapAccounts(ctx, db, filepath.Join(varDir, "initial-credentials")); err != nil {
		return err
	}

	tc, err := dialTemporal(ctx, cfg.TemporalAddress, cfg.TemporalNamespace, log)
	if err != nil {
		return err
	}
	defer tc.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runWorker(gctx, tc, db, cfg.TaskQueue, log) })
	apiUp := make(chan struct{})
	g.Go(func() error {
		return serveAPI(gctx, cfg, db, tc, log, func([]net.Addr) { close(apiUp) })
	})
	// The two local agents enroll through the HTTPS API once it listens.
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-apiUp:
		}
		var agents []*controlledAgent
		var hostIDs []string
		if o.httpsListen != "" {
			var err error
			agents, err = startDevAgents(gctx, db, varDir, devHTTPSURL(o.httpsListen), cfg.CADir, cfg.TemporalAddress, cfg.TemporalNamespace, log)
			if err != nil {
				return err
			}
			for _, a := range agents {
				hostIDs = append(hostIDs, a.HostID())
			}
		} else {
			log.Warn("no HTTPS listener: the local agents cannot enroll and do not start")
		}
		log.Info("Ferry dev is up", "ui", "http://"+o.httpListen, "https", "https://"+o.httpsListen,
			"temporal_ui", cfg.TemporalUIURL, "state", varDir, "agent_hosts", hostIDs)
		return runDevAgents(gctx, agents)
	})
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-temporal.done:
			return fmt.Errorf("the Temporal dev server exited: see %s", temporal.logPath)
		}
	})
	err = g.Wait()
	if ctx.Err() != nil {
		log.Info("stopping Ferry dev")
		return nil
	}
	return err
}

// devTemporal is the Temporal dev server child process.
type devTemporal struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

func startDevTemporal(ctx context.Context, bin, varDir string, o devOptions, log *slog.Logger) (*devTemporal, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", o.temporalPort)
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("port %d is already in use (another Temporal or ferry dev?): stop it or pass --temporal-port", o.temporalPort)
	}
	logPath := filepath.Join(varDir, "temporal.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(o.temporalPort),
		"--ui-ip", "127.0.0.1", "--ui-port", fmt.Sprint(o.temporalUIPort),
		"--db-filename", filepath.Join(varDir, "temporal.db"), "--log-level", "warn"}
	for _, sa := range workflows.SearchAttributes {
		args = append(args, "--search-attribute", sa.Name+"="+sa.Type)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start Temporal dev server: %w", err)
	}
	t := &devTemporal{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { _ = cmd.Wait(); lf.Close(); close(t.done) }()
	log.Info("starting the Temporal dev server", "address", addr, "ui", fmt.Sprintf("http://127.0.0.1:%d", o.temporalUIPort), "log", logPath)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
			c.Close()
			return t, nil
		}
		select {
		case <-t.done:
			return nil, fmt.Errorf("the Temporal dev server exited at start: see %s", logPath)
		case <-ctx.Done():
			t.stop(log)
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.stop(log)
			return nil, fmt.Errorf("the Temporal dev server did not listen on %s within 60s: see %s", addr, logPath)
		}
	}
}

func (t *devTemporal) stop(log *slog.Logger) {
	_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(15 * time.Second):
		log.Warn("the Temporal dev server did not stop in time; killing it")
		_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
		<-t.done
	}
}
