package main

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/hostinfo"
	"github.com/ferry-migrate/ferry/apiserver"
)

// hostFacts reads this host's facts for the control plane.
func hostFacts(dataAddr string) (apiserver.HostFacts, error) {
	in, err := hostinfo.Facts()
	if err != nil {
		return apiserver.HostFacts{}, err
	}
	return apiserver.HostFacts{Hostname: in.Hostname, OS: in.OS, Platform: in.Platform, Arch: in.Arch,
		Kernel: in.Kernel, CPUs: in.CPUs, MemoryBytes: in.MemoryBytes, Disks: in.Disks,
		Addresses: in.Addresses, DataAddr: dataAddr, AgentVersion: apiserver.Version}, nil
}

// hostAddresses are the host's non-loopback addresses, IPv4 first.
func hostAddresses() []string { return hostinfo.Addresses() }

// sameFacts compares facts ignoring the disks' free space, which changes
// all the time and travels with the metrics.
func sameFacts(a, b apiserver.HostFacts) bool {
	strip := func(f apiserver.HostFacts) apiserver.HostFacts {
		d := make([]ferry.HostDisk, len(f.Disks))
		for i, x := range f.Disks {
			x.FreeBytes = 0
			d[i] = x
		}
		f.Disks = d
		return f
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// heartbeats reports to the control plane every heartbeat interval: facts
// on the first beat and when they change, metrics on every beat. A server
// outage is logged and survived. It returns errRevoked when the server
// refuses the host's certificate, and nil when ctx ends.
func (c *controlledAgent) heartbeats(ctx context.Context) error {
	client, err := c.en.apiClient(c.id)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	every := c.o.heartbeatEvery
	if every <= 0 {
		every = 15 * time.Second
	}
	var sampler hostinfo.Sampler
	var sent *apiserver.HostFacts // last facts the server acknowledged
	failures := 0
	events := c.securityEvents()
	var unsent []apiserver.AgentEvent
	for {
		facts, err := hostFacts(c.dataAddr)
		if err != nil {
			c.log.Warn("read host facts", "err", err)
		}
		var send *apiserver.HostFacts
		if err == nil && (sent == nil || !sameFacts(*sent, facts)) {
			send = &facts
		}
		m, err := sampler.Metrics()
		if err != nil {
			c.log.Warn("read host metrics", "err", err)
		}
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		reply, err := apiserver.Heartbeat(hctx, client, c.en.ServerURL, send, m)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case refusedByServer(err):
			c.log.Error("the control plane refuses this host's certificate (revoked): stopping", "err", err)
			return errRevoked
		case err != nil:
			failures++
			if failures == 1 || failures%20 == 0 {
				c.log.Warn("heartbeat failed; the agent keeps running and retries", "err", err, "failures", failures)
			}
			client.CloseIdleConnections()
		default:
			if failures > 0 {
				c.log.Info("control plane reachable again", "after_failures", failures)
			}
			failures = 0
			if send != nil {
				sent = send
			}
			rev := make(map[string]bool, len(reply.RevokedSerials))
			for _, s := range reply.RevokedSerials {
				rev[strings.ToLower(s)] = true
			}
			c.revoked.Store(&rev)
			if skew := time.Since(reply.Time); skew.Abs() > 30*time.Second {
				c.log.Warn("clock differs from the control plane's", "skew", skew.Round(time.Second))
			}
		}
		unsent = c.reportEvents(ctx, client, unsent)
		timer := time.NewTimer(every)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case ev := <-events:
				// Security events go out at once, not with the next beat.
				unsent = c.reportEvents(ctx, client, append(unsent, ev))
			case <-timer.C:
				break wait
			}
		}
	}
}

// maxUnsentEvents bounds the security events kept while the control plane
// is unreachable; older ones are dropped (they stay in the agent's log).
const maxUnsentEvents = 256

// securityEvents makes the data channel report refused paths into the
// returned channel (the receive job never blocks on it: when it is full the
// event is only logged). Without a data channel the channel stays silent.
func (c *controlledAgent) securityEvents() <-chan apiserver.AgentEvent {
	ch := make(chan apiserver.AgentEvent, 64)
	if c.data == nil {
		return ch
	}
	c.data.SetRefusedPathHandler(func(r agent.RefusedPath) {
		ev := apiserver.AgentEvent{Kind: apiserver.AgentEventPathRefused, Time: time.Now(), JobID: r.JobID,
			Peer: r.Remote, PeerName: r.PeerName, Root: r.Root, Reason: r.Reason}
		c.log.Warn("security: a peer sent a path outside the job's root; refused", "job", r.JobID, "peer", r.Remote,
			"peer_name", r.PeerName, "reason", r.Reason)
		select {
		case ch <- ev:
		default:
			c.log.Error("security event queue full: event not reported to the control plane", "job", r.JobID)
		}
	})
	return ch
}

// reportEvents sends pending security events and returns those still
// unsent (all of them when the control plane did not take them).
func (c *controlledAgent) reportEvents(ctx context.Context, client *http.Client, events []apiserver.AgentEvent) []apiserver.AgentEvent {
	for len(events) > 0 {
		n := min(len(events), 64)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := apiserver.ReportAgentEvents(rctx, client, c.en.ServerURL, events[:n])
		cancel()
		if err != nil {
			c.log.Warn("report security events; kept for the next heartbeat", "err", err, "events", len(events))
			if len(events) > maxUnsentEvents {
				events = events[len(events)-maxUnsentEvents:]
			}
			return events
		}
		events = events[n:]
	}
	return nil
}

// refusedByServer reports whether a heartbeat error means the server
// refuses this host: 401 from the API, or the HTTPS listener refusing the
// certificate in the handshake.
func refusedByServer(err error) bool {
	if err == nil {
		return false
	}
	var ae *apiserver.APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusUnauthorized
	}
	return strings.Contains(err.Error(), "tls: bad certificate") || strings.Contains(err.Error(), "revoked host")
}
