package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/worker"
)

// agentControlOptions are the flags of `ferry agent` under a control plane.
type agentControlOptions struct {
	enroll            enrollRequest
	advertise         string
	temporalAddress   string
	temporalNamespace string
	heartbeatEvery    time.Duration

	// Set from the agent command's own flags.
	listen          string
	dataDir         string
	checkpointBytes int64
}

func (o *agentControlOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.enroll.URL, "enroll", "", "control plane URL (https://HOST:8443) to enroll with on the first start; later starts use the enrollment kept in --data-dir")
	f.StringVar(&o.enroll.Token, "token", "", "one-time enrollment token (ferry hosts enroll-token), with --enroll")
	f.StringVar(&o.enroll.Name, "name", "", "display name of the host at enrollment (default: its hostname)")
	f.StringVar(&o.enroll.CACert, "ca-cert", "", "the control plane's CA certificate (the server's CA-DIR/ca.crt), to verify the server at enrollment")
	f.BoolVar(&o.enroll.Insecure, "insecure-enroll", false, "do not verify the server's certificate at enrollment (development only: the token could leak to an impostor)")
	f.StringVar(&o.advertise, "advertise", "", "HOST:PORT other agents reach this agent's data channel on (default: the --listen host unless empty or unspecified, else the first non-loopback address; the listen port)")
	f.StringVar(&o.temporalAddress, "temporal-address", "", "Temporal frontend HOST:PORT (default: the host of the enrollment URL with port 7233)")
	f.StringVar(&o.temporalNamespace, "temporal-namespace", "default", "Temporal namespace")
	f.DurationVar(&o.heartbeatEvery, "heartbeat-interval", 15*time.Second, "how often the agent reports to the control plane")
	f.MarkHidden("heartbeat-interval")
}

// controlledAgent is an enrolled agent, bound and ready to run.
type controlledAgent struct {
	o        agentControlOptions
	en       *enrollment
	id       *pki.Identity
	data     *agent.Agent
	dataAddr string // advertised data-channel address
	log      *slog.Logger
	revoked  atomic.Pointer[map[string]bool] // hex serials, from heartbeats
}

// prepareControlledAgent enrolls on the first start (or loads the
// enrollment kept in the data dir) and binds the data channel.
func prepareControlledAgent(ctx context.Context, o agentControlOptions, log *slog.Logger) (*controlledAgent, error) {
	if o.dataDir == "" {
		return nil, settingError("data-dir", errors.New("is required"))
	}
	if o.advertise != "" {
		if err := validateHostPort(o.advertise, false); err != nil {
			return nil, settingError("advertise", err)
		}
	}
	en, err := loadEnrollment(o.dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if o.enroll.URL == "" {
			return nil, errors.New("this agent is not enrolled: pass --enroll URL --token TOKEN (control plane) or --ca CADIR (standalone)")
		}
		facts, ferr := hostFacts(advertisedAddr(o.listen, o.advertise, nil))
		if ferr != nil {
			return nil, ferr
		}
		if en, err = enroll(ctx, o.dataDir, o.enroll, facts); err != nil {
			return nil, err
		}
		log.Info("enrolled with the control plane", "host_id", en.HostID, "server", en.ServerURL)
	case err != nil:
		return nil, err
	case o.enroll.URL != "" && o.enroll.URL != en.ServerURL:
		log.Warn("already enrolled: --enroll is ignored", "host_id", en.HostID, "server", en.ServerURL)
	}
	id, err := en.identity()
	if err != nil {
		return nil, err
	}
	c := &controlledAgent{o: o, en: en, id: id, log: log.With("host_id", en.HostID)}
	c.revoked.Store(&map[string]bool{})
	id.IsRevoked = func(serial *big.Int) bool { return (*c.revoked.Load())[serial.Text(16)] }
	c.data, err = agent.New(agent.Config{Listen: o.listen, DataDir: o.dataDir, ServerTLS: id.ServerTLS(),
		ClientTLS: id.ClientTLS(), Log: c.log, CheckpointBytes: o.checkpointBytes})
	if err != nil {
		return nil, err
	}
	c.dataAddr = advertisedAddr(o.listen, o.advertise, c.data.Addr())
	return c, nil
}

// HostID is the ID the control plane gave this host.
func (c *controlledAgent) HostID() string { return c.en.HostID }

// temporalAddress is --temporal-address, else the enrollment URL's host on
// port 7233.
func (c *controlledAgent) temporalAddress() (string, error) {
	if c.o.temporalAddress != "" {
		return c.o.temporalAddress, nil
	}
	u, err := url.Parse(c.en.ServerURL)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(u.Hostname(), "7233"), nil
}

// errRevoked ends an agent whose host the control plane revoked.
var errRevoked = errors.New("the control plane revoked this host: the agent stopped its worker and data channel")

// Run serves the data channel, runs the host's Temporal worker and
// heartbeats until ctx ends (nil) or the host is revoked (errRevoked).
func (c *controlledAgent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	served := make(chan error, 1)
	go func() { served <- c.data.Serve(ctx) }()
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		if err := c.heartbeats(ctx); err != nil {
			cancel(err)
		}
	}()
	if err := c.runWorker(ctx); err != nil && ctx.Err() == nil {
		cancel(err)
	}
	<-ctx.Done()
	c.data.Close()
	<-hbDone
	serr := <-served
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return serr
}

// runWorker polls the host's task queue until ctx ends.
func (c *controlledAgent) runWorker(ctx context.Context) error {
	addr, err := c.temporalAddress()
	if err != nil {
		return err
	}
	tc, err := dialTemporal(ctx, addr, c.o.temporalNamespace, c.log)
	if err != nil {
		return err
	}
	defer tc.Close()
	keyClient, err := c.en.apiClient(c.id)
	if err != nil {
		return err
	}
	defer keyClient.CloseIdleConnections()
	host := &activities.Host{ID: c.en.HostID, AgentVersion: apiserver.Version,
		Engine: &activities.AgentEngine{Controller: &agent.Controller{TLS: c.id.ClientTLS()}, SelfAddr: c.dataAddr},
		Keys:   controlPlaneKeys{client: keyClient, serverURL: c.en.ServerURL}}
	w, err := worker.NewHost(tc, host, sdkworker.Options{WorkerStopTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start host worker: %w", err)
	}
	c.log.Info("host worker polling", "temporal", addr, "task_queue", c.en.TaskQueue)
	<-ctx.Done()
	w.Stop()
	return nil
}

// controlPlaneKeys is the agent's activities.KeySource: it fetches a job's
// payload secret from the control plane (agent-job-key) over HTTPS with the
// host's client certificate. The key is neither cached nor logged.
type controlPlaneKeys struct {
	client    *http.Client
	serverURL string
}

// JobKey implements activities.KeySource. A refusal by the control plane
// (403: not this host's job; 409: the job is not encrypted; 401: the
// certificate is refused) wraps activities.ErrInvalidRequest so that the
// activity fails without retries; other errors are retried.
func (k controlPlaneKeys) JobKey(ctx context.Context, jobID string) ([]byte, error) {
	key, err := apiserver.JobKey(ctx, k.client, k.serverURL, jobID)
	var ae *apiserver.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
		return nil, fmt.Errorf("%w: %w", activities.ErrInvalidRequest, err)
	}
	return key, err
}

// advertisedAddr is the data-channel address other agents use: advertise
// when set, else the listen host (or, when it is empty or unspecified, the
// first non-loopback address, else 127.0.0.1) with the listen port (the
// bound one when bound is known). It returns "" when the port is not known
// yet (listening on port 0 before binding).
func advertisedAddr(listen, advertise string, bound net.Addr) string {
	if advertise != "" {
		return advertise
	}
	host, port, _ := net.SplitHostPort(listen)
	if ta, ok := bound.(*net.TCPAddr); ok && ta != nil {
		port = strconv.Itoa(ta.Port)
	}
	if port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if addrs := hostAddresses(); len(addrs) > 0 {
			host = addrs[0]
		}
	}
	return net.JoinHostPort(host, port)
}

// runControlledAgent is `ferry agent` under a control plane. It prints
// "host ID" and "listening on ADDR" on out once serving.
func runControlledAgent(ctx context.Context, o agentControlOptions, log *slog.Logger, out io.Writer) error {
	c, err := prepareControlledAgent(ctx, o, log)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "host "+c.HostID())
	fmt.Fprintln(out, "listening on "+c.data.Addr().String())
	log.Info("agent up", "host_id", c.HostID(), "data_addr", c.dataAddr, "server", c.en.ServerURL)
	return c.Run(ctx)
}
