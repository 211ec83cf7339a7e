package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/store"
)

// devAgent is one of the two local agents of `ferry dev`.
type devAgent struct {
	name   string // "a" or "b"
	listen string
}

var devAgents = []devAgent{{"a", "127.0.0.1:7781"}, {"b", "127.0.0.1:7782"}}

// enrollmentPrefix is the prefix of enrollment tokens (the API's).
const enrollmentPrefix = "fet_"

// startDevAgents prepares the two local agents of `ferry dev`: each is
// enrolled on its first start (with a token created directly in the store,
// over the HTTPS API at httpsURL, trusting the dev CA) and reuses its
// enrollment in VAR-DIR/agents/NAME afterwards.
func startDevAgents(ctx context.Context, db *store.DB, varDir, httpsURL, caDir, temporalAddr, namespace string, log *slog.Logger) ([]*controlledAgent, error) {
	var out []*controlledAgent
	for _, d := range devAgents {
		o := agentControlOptions{listen: d.listen, dataDir: filepath.Join(varDir, "agents", d.name),
			temporalAddress: temporalAddr, temporalNamespace: namespace, heartbeatEvery: 15 * time.Second}
		if _, err := loadEnrollment(o.dataDir); errors.Is(err, fs.ErrNotExist) {
			secret := ferry.NewSecret(enrollmentPrefix)
			tok := &ferry.EnrollmentToken{TokenHash: ferry.HashSecret(secret), Description: "ferry dev agent " + d.name,
				ExpiresAt: time.Now().Add(10 * time.Minute)}
			if err := db.CreateEnrollmentToken(ctx, tok); err != nil {
				return nil, fmt.Errorf("dev agent %s: enrollment token: %w", d.name, err)
			}
			o.enroll = enrollRequest{URL: httpsURL, Token: secret, Name: "dev-" + d.name, CACert: filepath.Join(caDir, pki.RootsFile)}
		}
		c, err := prepareControlledAgent(ctx, o, log.With("agent", d.name))
		if err != nil {
			return nil, fmt.Errorf("dev agent %s: %w", d.name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// runDevAgents runs the prepared agents until ctx ends.
func runDevAgents(ctx context.Context, agents []*controlledAgent) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, a := range agents {
		g.Go(func() error { return a.Run(gctx) })
	}
	return g.Wait()
}

// devHTTPSURL is the URL the dev agents enroll and heartbeat on: the HTTPS
// listener, on localhost when it listens on every address.
func devHTTPSURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "https://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "https://" + net.JoinHostPort(host, port)
}
