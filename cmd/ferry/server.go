package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/store"
)

func newServerCmd() *cobra.Command {
	var cfg controlConfig
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control-plane API server and web UI",
		Long: `Run the control-plane API server: the OpenAPI operations under /api/v1, the
OpenAPI document at /openapi.json and /openapi.yaml, the docs at /docs, the web
UI at /, /healthz, /readyz and Prometheus metrics at /metrics.

It needs a database (--database-dsn) and a Temporal frontend
(--temporal-address). It starts even while Temporal is down; /readyz reports
it until it is reachable.

The control plane's certificate authority (--ca-dir, created on the first
start) issues the certificates of enrolled agents and, unless --tls-cert is
given, the HTTPS listener's certificate. Agents send their heartbeats over
HTTPS with their client certificate.

On the first start against an empty database it creates the built-in accounts
sysadmin, admin, operator and auditor with random passwords, prints them once
and writes them to --initial-credentials (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validateCore(); err != nil {
				return err
			}
			if err := cfg.validateServe(); err != nil {
				return err
			}
			if cfg.HTTPSListen != "" && cfg.TLSCert == "" && cfg.CADir == "" {
				return settingError("tls-cert", fmt.Errorf("--https-listen needs --tls-cert and --tls-key, or --ca-dir to issue one"))
			}
			return runServer(cmd.Context(), cfg, slog.Default(), nil)
		},
	}
	cfg.addCoreFlags(cmd.Flags(), "sqlite:var/ferry.db", "var/ca")
	cfg.addServeFlags(cmd.Flags())
	cmd.Flags().StringVar(&cfg.InitialCredentials, "initial-credentials", "var/initial-credentials",
		"file that receives the built-in accounts' first passwords (user:password lines, mode 0600)")
	return cmd
}

// runServer runs the API server until ctx ends. ready, if not nil, receives
// the bound listener addresses.
func runServer(ctx context.Context, cfg controlConfig, log *slog.Logger, ready func([]net.Addr)) error {
	db, err := openStore(ctx, cfg.DatabaseDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := bootstrapAccounts(ctx, db, cfg.InitialCredentials); err != nil {
		return err
	}
	tc, err := client.NewLazyClient(client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace,
		Logger: tlog.NewStructuredLogger(log.With("component", "temporal"))})
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()
	return serveAPI(ctx, cfg, db, tc, log, ready)
}

// bootstrapAccounts creates the built-in roles and, on an empty database, the
// built-in accounts, whose passwords it prints once and writes to path.
func bootstrapAccounts(ctx context.Context, db *store.DB, path string) error {
	creds, err := apiserver.Bootstrap(ctx, db)
	if err != nil {
		return fmt.Errorf("create built-in roles and accounts: %w", err)
	}
	if len(creds) == 0 {
		return nil
	}
	var b strings.Builder
	for _, c := range creds {
		fmt.Fprintf(&b, "%s:%s\n", c.User, c.Password)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write initial credentials: %w", err)
	}
	fmt.Fprintf(os.Stderr, "\nBuilt-in accounts created (shown once; also in %s, mode 0600).\n"+
		"Each must change its password at first login.\n\n%s\n", path, b.String())
	return nil
}

// loadOrInitCA opens the control plane's certificate authority, creating it
// on the first start. An empty dir means no CA: enrollment is refused.
func loadOrInitCA(dir string) (*pki.CA, error) {
	if dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(dir, pki.CAKeyFile)); os.IsNotExist(err) {
		if err := pki.InitCA(dir, "Ferry control plane CA"); err != nil {
			return nil, err
		}
	}
	return pki.LoadCA(dir)
}

// httpsConfig returns the HTTPS listener's TLS configuration: the operator's
// certificate, or one issued by the control plane's CA (so that agents, which
// receive the CA at enrollment, trust it).
func httpsConfig(cfg controlConfig) (*tls.Config, error) {
	if cfg.HTTPSListen == "" {
		return nil, nil
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, settingError("tls-cert", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	sans := []string{"localhost"}
	if host, _, err := net.SplitHostPort(cfg.HTTPSListen); err == nil && host != "" {
		sans = append(sans, host)
	}
	if h, err := os.Hostname(); err == nil {
		sans = append(sans, h)
	}
	id, err := pki.LoadOrIssue(cfg.CADir, filepath.Join(cfg.CADir, "server"), "ferry-control", sans)
	if err != nil {
		return nil, settingError("ca-dir", fmt.Errorf("issue the HTTPS certificate: %w", err))
	}
	return &tls.Config{Certificates: []tls.Certificate{id.Cert}, MinVersion: tls.VersionTLS12}, nil
}

// serveAPI builds the API server on an open store and Temporal client and
// serves it on the configured listeners.
func serveAPI(ctx context.Context, cfg controlConfig, db *store.DB, tc client.Client, log *slog.Logger, ready func([]net.Addr)) error {
	ca, err := loadOrInitCA(cfg.CADir)
	if err != nil {
		return settingError("ca-dir", err)
	}
	tlsCfg, err := httpsConfig(cfg)
	if err != nil {
		return err
	}
	srv, err := apiserver.New(apiserver.Config{
		Logger:            log,
		DB:                db,
		CA:                ca,
		Engine:            &apiserver.TemporalEngine{Client: tc, Hosts: db, TaskQueue: cfg.TaskQueue},
		TemporalUIURL:     cfg.TemporalUIURL,
		TemporalNamespace: cfg.TemporalNamespace,
		Ready: map[string]apiserver.Pinger{
			"database": apiserver.PingFunc(db.Ping),
			"temporal": apiserver.PingFunc(func(ctx context.Context) error {
				_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
				return err
			}),
		},
	})
	if err != nil {
		return err
	}
	var ls []listener
	if cfg.HTTPListen != "" {
		ls = append(ls, listener{addr: cfg.HTTPListen})
	}
	if cfg.HTTPSListen != "" {
		ls = append(ls, listener{addr: cfg.HTTPSListen, tls: srv.AgentTLS(tlsCfg)})
	}
	return serveHTTP(ctx, srv.Handler(), ls, log, ready)
}
