package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/agent/bwlimit"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// Version is the software version announced in hellos.
const Version = "ferry-agent/0.1"

// AttachTimeout is how long an accepted job waits for its source agent.
const AttachTimeout = 2 * time.Minute

// Config configures an Agent.
type Config struct {
	// Listen is the TCP address to serve on (":0" picks a port).
	Listen string
	// DataDir holds checkpoints and the identity; created if missing.
	DataDir string
	// ServerTLS and ClientTLS are the mutually authenticated TLS 1.3
	// configurations (pki.Identity.ServerTLS/ClientTLS). ClientTLS is used
	// to dial target agents.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	Log       *slog.Logger
	// CheckpointBytes overrides the jobs' checkpoint interval when > 0
	// (tests and benchmarks).
	CheckpointBytes int64
	// OnRefusedPath, if set, hears of every receive job refused because
	// its sender named a path escaping the target root (see RefusedPath);
	// SetRefusedPathHandler replaces it later.
	OnRefusedPath func(RefusedPath)
}

// Agent is a running agent daemon.
type Agent struct {
	cfg Config
	ln  net.Listener
	log *slog.Logger

	// Guarded by mu.
	mu      sync.Mutex
	waiting map[string]*waitingJob // receive jobs awaiting their source, by job id
	running map[string]bool        // job ids running on this agent
	// limiters are the bandwidth limiters of the jobs sending from this
	// agent, by job id (SetLimits changes them live).
	limiters map[string]*bwlimit.Limiter
	conns    map[net.Conn]struct{}

	wg sync.WaitGroup
}

// waitingJob is a receive job whose source has not attached yet.
type waitingJob struct {
	token  string
	attach chan attached
	gone   chan struct{} // closed when the receive job ends
}

// attached hands a data connection to a waiting job; the job closes done
// when it no longer needs the connection.
type attached struct {
	conn   *wire.Conn
	attach *wire.Attach
	done   chan struct{}
}

// New creates the data dir and starts listening. Serve must be called to
// accept connections. Returns an error if the address cannot be bound or
// the data dir cannot be created.
func New(cfg Config) (*Agent, error) {
	if cfg.ServerTLS == nil || cfg.ClientTLS == nil {
		return nil, errors.New("agent: TLS configuration required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent: data dir required")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("agent: data dir: %w", err)
	}
	cfg.DataDir = abs
	if err := os.MkdirAll(filepath.Join(abs, "jobs"), 0o700); err != nil {
		return nil, fmt.Errorf("agent: data dir: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("agent: listen: %w", err)
	}
	return &Agent{cfg: cfg, ln: ln, log: cfg.Log, waiting: map[string]*waitingJob{},
		running: map[string]bool{}, limiters: map[string]*bwlimit.Limiter{}, conns: map[net.Conn]struct{}{}}, nil
}

// Addr returns the listening address.
func (a *Agent) Addr() net.Addr { return a.ln.Addr() }

// Serve accepts connections until ctx ends or Close is called; it then
// closes every connection and waits for the handlers. It returns nil after
// a clean shutdown.
func (a *Agent) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { a.Close() })
	defer stop()
	a.log.Info("agent listening", "addr", a.ln.Addr().String(), "data_dir", a.cfg.DataDir)
	var err error
	for {
		var nc net.Conn
		nc, err = a.ln.Accept()
		if err != nil {
			break
		}
		tuneTCP(nc)
		a.wg.Go(func() { a.handle(ctx, nc) })
	}
	a.closeConns()
	a.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops listening and closes every connection.
func (a *Agent) Close() error {
	err := a.ln.Close()
	a.closeConns()
	return err
}

func (a *Agent) closeConns() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.conns {
		c.Close()
	}
}

func (a *Agent) track(c net.Conn) func() {
	a.mu.Lock()
	a.conns[c] = struct{}{}
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
	}
}

// tuneTCP disables Nagle (batches are flushed explicitly). Socket buffer
// sizes are left to the kernel's autotuning, which grows them with the
// path's bandwidth-delay product; fixed large buffers would only add data
// in flight that a killed agent loses.
func tuneTCP(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
}

// hello returns this side's Hello.
func hello(role string) *wire.Hello {
	return &wire.Hello{Version: wire.Version, Role: role, Agent: Version,
		Caps: append([]string{wire.CapDelta, wire.CapResume}, payloadCaps...)}
}

// handle serves one incoming connection.
func (a *Agent) handle(ctx context.Context, nc net.Conn) {
	untrack := a.track(nc)
	defer func() {
		untrack()
		nc.Close()
	}()
	rb := newRecordBuffer(nc)
	tc := tls.Server(rb, a.cfg.ServerTLS)
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		a.log.Warn("agent: TLS handshake refused", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	rb.enable()
	c := wire.NewConn(tc)
	c.SetTransportFlush(rb.Flush)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	peer, err := c.Handshake(hello(wire.RoleAgent))
	if err != nil {
		a.log.Warn("agent: hello failed", "remote", nc.RemoteAddr().String(), "err", err)
		if errors.Is(err, wire.ErrVersionMismatch) {
			c.Send(wire.ErrorMsg(err))
		}
		return
	}
	m, err := c.ReadMsg()
	nc.SetDeadline(time.Time{})
	if err != nil {
		return
	}
	log := a.log.With("remote", nc.RemoteAddr().String(), "peer", peer.Agent)
	switch m := m.(type) {
	case *wire.ReceiveJob:
		a.receive(ctx, c, m, log)
	case *wire.SendJob:
		a.send(ctx, c, m, log)
	case *wire.Attach:
		a.attach(ctx, c, m)
	case *wire.VerifyScan:
		a.verify(ctx, c, m, log)
	case *wire.SetLimits:
		a.setLimits(c, m, log)
	case *wire.SyncStart:
		a.syncSource(ctx, c, m, log)
	case *wire.SyncAttach:
		a.syncTarget(ctx, c, m, log)
	case *wire.SyncPrepare:
		a.syncPrepare(c, m, log)
	default:
		c.Send(wire.ErrorMsg(fmt.Errorf("%w: %s cannot start a conversation", wire.ErrProtocol, m.Kind())))
	}
}
