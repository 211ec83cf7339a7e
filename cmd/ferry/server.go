package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

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
it until it is reachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validateCore(); err != nil {
				return err
			}
			if err := cfg.validateServe(); err != nil {
				return err
			}
			if cfg.HTTPSListen != "" && cfg.TLSCert == "" {
				return settingError("tls-cert", fmt.Errorf("--https-listen needs --tls-cert and --tls-key"))
			}
			return runServer(cmd.Context(), cfg, slog.Default(), nil)
		},
	}
	cfg.addCoreFlags(cmd.Flags(), "sqlite:var/ferry.db", "var/ca")
	cfg.addServeFlags(cmd.Flags())
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
	tc, err := client.NewLazyClient(client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace,
		Logger: tlog.NewStructuredLogger(log.With("component", "temporal"))})
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()
	var tlsCfg *tls.Config
	if cfg.HTTPSListen != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return settingError("tls-cert", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return serveAPI(ctx, cfg, db, tc, tlsCfg, log, ready)
}

// loadOrInitCA opens the control plane's certificate authority, creating it
// on the first start. An empty dir means no CA: enrollment is refused.
func loadOrInitCA(dir string) (*pki.CA, error) {
	if dir == "" {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); os.IsNotExist(err) {
		if err := pki.InitCA(dir, "Ferry control plane CA"); err != nil {
			return nil, err
		}
	}
	return pki.LoadCA(dir)
}

// serveAPI builds the API server on an open store and Temporal client and
// serves it on the configured listeners.
func serveAPI(ctx context.Context, cfg controlConfig, db *store.DB, tc client.Client, tlsCfg *tls.Config, log *slog.Logger, ready func([]net.Addr)) error {
	ca, err := loadOrInitCA(cfg.CADir)
	if err != nil {
		return settingError("ca-dir", err)
	}
	srv, err := apiserver.New(apiserver.Config{
		Logger:            log,
		DB:                db,
		CA:                ca,
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
		ls = append(ls, listener{addr: cfg.HTTPSListen, tls: tlsCfg})
	}
	return serveHTTP(ctx, srv.Handler(), ls, log, ready)
}
