package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ferry-migrate/ferry/agent/bwlimit"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// registerLimiter makes a sending job's limiter reachable by SetLimits and
// returns the function that removes it again.
func (a *Agent) registerLimiter(jobID string, l *bwlimit.Limiter) func() {
	if l == nil {
		return func() {}
	}
	a.mu.Lock()
	a.limiters[jobID] = l
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		if a.limiters[jobID] == l {
			delete(a.limiters, jobID)
		}
		a.mu.Unlock()
	}
}

// SetLimits replaces the bandwidth schedule of job jobID, which must be
// sending from this agent now; the transfer follows the new schedule at once
// (waiting senders are woken). spec uses bwlimit syntax; "" or "off" lifts
// the limit. It returns the schedule in force. Errors: wire.ErrProtocol
// wrapping the parse error for a bad spec, wire.ErrUnknownJob when no such
// job is sending here.
func (a *Agent) SetLimits(jobID, spec string) (*bwlimit.Schedule, error) {
	var sched *bwlimit.Schedule
	if s := strings.TrimSpace(spec); s != "" && s != "off" {
		var err error
		if sched, err = bwlimit.ParseSchedule(s); err != nil {
			return nil, fmt.Errorf("%w: bwlimit: %w", wire.ErrProtocol, err)
		}
	}
	a.mu.Lock()
	l := a.limiters[jobID]
	a.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("%w: %s is not sending on this agent", wire.ErrUnknownJob, jobID)
	}
	l.SetSchedule(sched)
	return sched, nil
}

// setLimits serves a controller's SetLimits.
func (a *Agent) setLimits(c *wire.Conn, m *wire.SetLimits, log *slog.Logger) {
	sched, err := a.SetLimits(m.JobID, m.Schedule)
	if err != nil {
		log.Warn("set limits refused", "job", m.JobID, "err", err)
		c.Send(wire.ErrorMsg(err))
		return
	}
	log.Info("bandwidth schedule changed", "job", m.JobID, "schedule", sched.String())
	c.Send(&wire.LimitsSet{Schedule: sched.String()})
}

// SetBandwidth replaces the bandwidth schedule of the job jobID running on
// the source agent at addr (spec in bwlimit syntax, "off" for none); the
// running transfer follows it within a second. Errors: a dial failure, or
// the agent's *wire.RemoteError wrapping wire.ErrUnknownJob (the job is not
// sending there, e.g. it already ended) or wire.ErrProtocol (a bad spec).
func (c *Controller) SetBandwidth(ctx context.Context, addr, jobID, spec string) error {
	conn, err := Dial(ctx, addr, c.TLS)
	if err != nil {
		return fmt.Errorf("agent %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.Send(&wire.SetLimits{JobID: jobID, Schedule: spec}); err != nil {
		return fmt.Errorf("agent %s: %w", addr, err)
	}
	if _, err := wire.Expect[*wire.LimitsSet](conn); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("agent %s: %w", addr, err)
	}
	return nil
}
