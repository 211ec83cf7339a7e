package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// Endpoint is a tree on an agent's host: ADDR:PATH on the command line.
type Endpoint struct {
	Addr string // host:port of the agent
	Path string // absolute path on that host
}

func (e Endpoint) String() string { return e.Addr + ":" + e.Path }

// ParseEndpoint parses HOST:PORT:/PATH (IPv6 hosts in brackets).
func ParseEndpoint(s string) (Endpoint, error) {
	i := strings.Index(s, ":/")
	if i < 0 {
		return Endpoint{}, fmt.Errorf("endpoint %q: want HOST:PORT:/ABSOLUTE/PATH", s)
	}
	addr, p := s[:i], s[i+1:]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	return Endpoint{Addr: addr, Path: p}, nil
}

// JobID derives the stable id of the mirror from → to, so that re-running
// the same mirror resumes it.
func JobID(from, to Endpoint) string {
	h := sha256.Sum256([]byte(from.String() + "\x00" + to.String()))
	return "m-" + hex.EncodeToString(h[:8])
}

// Controller drives agents: the ferry CLI uses it, and so can activities.
type Controller struct {
	// TLS is the client configuration (pki.Identity.ClientTLS).
	TLS *tls.Config
}

// MirrorRequest describes one mirror.
type MirrorRequest struct {
	JobID string // "" derives it from From and To
	From  Endpoint
	To    Endpoint
	Opts  mirror.Options
}

// Mirror runs a mirror between two agents and returns the source agent's
// summary (which includes the target's half). onProgress, if set, receives
// the source's progress reports. Errors: a dial or handshake failure
// (wrapping wire.ErrVersionMismatch on a version mismatch), or the failing
// agent's error (a *wire.RemoteError wrapping the sentinel of its code).
// Canceling ctx cancels the job on both agents.
func (c *Controller) Mirror(ctx context.Context, req MirrorRequest, onProgress func(mirror.Progress)) (mirror.Summary, error) {
	if req.JobID == "" {
		req.JobID = JobID(req.From, req.To)
	}
	if err := mirror.Normalize(&req.Opts); err != nil {
		return mirror.Summary{}, err
	}
	tc, err := Dial(ctx, req.To.Addr, c.TLS)
	if err != nil {
		return mirror.Summary{}, fmt.Errorf("target agent %s: %w", req.To.Addr, err)
	}
	defer tc.Close()
	stopT := context.AfterFunc(ctx, func() { tc.Close() })
	defer stopT()
	if err := tc.Send(&wire.ReceiveJob{JobID: req.JobID, Root: req.To.Path, Opts: req.Opts}); err != nil {
		return mirror.Summary{}, fmt.Errorf("target agent: %w", err)
	}
	acc, err := wire.Expect[*wire.JobAccepted](tc)
	if err != nil {
		return mirror.Summary{}, fmt.Errorf("target agent %s: %w", req.To.Addr, err)
	}
	sc, err := Dial(ctx, req.From.Addr, c.TLS)
	if err != nil {
		return mirror.Summary{}, fmt.Errorf("source agent %s: %w", req.From.Addr, err)
	}
	defer sc.Close()
	stopS := context.AfterFunc(ctx, func() { sc.Close() })
	defer stopS()
	err = sc.Send(&wire.SendJob{JobID: req.JobID, Root: req.From.Path, Target: req.To.Addr,
		Token: acc.Token, TargetSalt: acc.Salt, Opts: req.Opts})
	if err != nil {
		return mirror.Summary{}, fmt.Errorf("source agent: %w", err)
	}
	// The target's verdict arrives on its own connection; read it
	// concurrently so a target failure is reported as such.
	tdone := make(chan error, 1)
	go func() {
		m, err := tc.ReadMsg()
		switch {
		case err != nil:
			tdone <- fmt.Errorf("target agent: %w", err)
		case m.Kind() == wire.KindJobDone:
			tdone <- nil
		case m.Kind() == wire.KindError:
			tdone <- fmt.Errorf("target agent: %w", m.(*wire.Error).Err())
		default:
			tdone <- fmt.Errorf("target agent: %w: unexpected %s", wire.ErrProtocol, m.Kind())
		}
	}()
	var sum mirror.Summary
	var serr error
	for {
		m, err := sc.ReadMsg()
		if err != nil {
			if ctx.Err() != nil {
				serr = context.Cause(ctx)
			} else {
				serr = fmt.Errorf("source agent: %w", err)
			}
			break
		}
		if p, ok := m.(*wire.Progress); ok {
			if onProgress != nil {
				onProgress(*p)
			}
			continue
		}
		if jd, ok := m.(*wire.JobDone); ok {
			if err := json.Unmarshal(jd.Summary, &sum); err != nil {
				serr = fmt.Errorf("source agent: %w: summary: %v", wire.ErrProtocol, err)
			}
			break
		}
		if e, ok := m.(*wire.Error); ok {
			serr = fmt.Errorf("source agent: %w", e.Err())
			break
		}
		serr = fmt.Errorf("source agent: %w: unexpected %s", wire.ErrProtocol, m.Kind())
		break
	}
	if serr != nil {
		// When the target failed first, the source only saw a cut
		// connection: report the target's own error then.
		sc.Close()
		var terr error
		if wire.CodeOf(serr) == wire.CodeInternal {
			select {
			case terr = <-tdone:
			case <-time.After(5 * time.Second):
			}
		}
		tc.Close()
		var tre *wire.RemoteError
		if terr != nil && errors.As(terr, &tre) && wire.CodeOf(serr) == wire.CodeInternal {
			return sum, terr
		}
		return sum, serr
	}
	if err := <-tdone; err != nil {
		return sum, err
	}
	return sum, nil
}

// Manifest fetches the manifest of a tree from its agent.
func (c *Controller) Manifest(ctx context.Context, ep Endpoint, opts mirror.Options) ([]wire.ManifestEntry, error) {
	conn, err := Dial(ctx, ep.Addr, c.TLS)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", ep.Addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.Send(&wire.VerifyScan{Root: ep.Path, Opts: opts}); err != nil {
		return nil, fmt.Errorf("agent %s: %w", ep.Addr, err)
	}
	var out []wire.ManifestEntry
	for {
		m, err := conn.ReadMsg()
		if err != nil {
			return nil, fmt.Errorf("agent %s: %w", ep.Addr, err)
		}
		switch m := m.(type) {
		case *wire.ManifestBatch:
			out = append(out, m.Entries...)
		case *wire.ManifestEnd:
			return out, nil
		case *wire.Error:
			return nil, fmt.Errorf("agent %s: %w", ep.Addr, m.Err())
		default:
			return nil, fmt.Errorf("agent %s: %w: unexpected %s", ep.Addr, wire.ErrProtocol, m.Kind())
		}
	}
}

// Verify compares the trees at from and to through their agents (each
// hashes its own files; only manifests cross the wire) and returns the
// differences; none means identical.
func (c *Controller) Verify(ctx context.Context, from, to Endpoint, opts mirror.Options) ([]mirror.Difference, error) {
	type res struct {
		m   []wire.ManifestEntry
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := c.Manifest(ctx, to, opts)
		ch <- res{m, err}
	}()
	src, err := c.Manifest(ctx, from, opts)
	dst := <-ch
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if dst.err != nil {
		return nil, fmt.Errorf("target: %w", dst.err)
	}
	return mirror.Compare(src, dst.m), nil
}
