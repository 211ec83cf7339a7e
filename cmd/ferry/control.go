package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/store"
)

// openStore opens the database and applies the migrations.
func openStore(ctx context.Context, dsn string) (*store.DB, error) {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactDSN(dsn), err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return db, nil
}

// dialTemporal connects to Temporal, retrying until it answers or ctx ends, so
// that the control plane may start before Temporal does.
func dialTemporal(ctx context.Context, addr, namespace string, log *slog.Logger) (client.Client, error) {
	opts := client.Options{HostPort: addr, Namespace: namespace, Logger: tlog.NewStructuredLogger(log.With("component", "temporal"))}
	delay := 200 * time.Millisecond
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to Temporal at %s: %w", addr, err)
		}
		log.Warn("Temporal not reachable yet, retrying", "address", addr, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to Temporal at %s: %w", addr, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// listener is one HTTP(S) endpoint of the API server.
type listener struct {
	addr string
	tls  *tls.Config // nil for plain HTTP
}

// serveHTTP serves h on every listener until ctx ends, then shuts down
// gracefully. ready, if not nil, receives the bound addresses once listening.
func serveHTTP(ctx context.Context, h http.Handler, ls []listener, log *slog.Logger, ready func([]net.Addr)) error {
	var bound []net.Addr
	var servers []*http.Server
	var nls []net.Listener
	for _, l := range ls {
		nl, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, o := range nls {
				o.Close()
			}
			return fmt.Errorf("listen on %s: %w", l.addr, err)
		}
		if l.tls != nil {
			nl = tls.NewListener(nl, l.tls)
		}
		nls = append(nls, nl)
		bound = append(bound, nl.Addr())
		servers = append(servers, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			// Requests (live progress streams among them) end with the server.
			BaseContext: func(net.Listener) context.Context { return ctx }})
	}
	if ready != nil {
		ready(bound)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := range servers {
		scheme := "http"
		if ls[i].tls != nil {
			scheme = "https"
		}
		log.Info("API server listening", "url", fmt.Sprintf("%s://%s", scheme, bound[i]))
		g.Go(func() error {
			if err := servers[i].Serve(nls[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		return nil
	})
	return g.Wait()
}
