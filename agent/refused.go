package agent

import (
	"crypto/tls"
	"errors"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// RefusedPath is a receive job this agent stopped because the sending peer
// named a path outside the job's target root (or an otherwise invalid one):
// a security event for the control plane's audit log.
type RefusedPath struct {
	JobID string
	Root  string // the job's target root on this host
	// Remote is the sending peer's network address; PeerName the common
	// name of its client certificate ("" when unknown).
	Remote   string
	PeerName string
	// Reason is the receiver's error; it quotes the offending path.
	Reason string
}

// SetRefusedPathHandler installs f (nil removes it) to be called, on the
// receive job's goroutine, each time a receive job is refused for a path
// escaping its root; it overrides Config.OnRefusedPath. f must not block
// for long.
func (a *Agent) SetRefusedPathHandler(f func(RefusedPath)) {
	a.mu.Lock()
	a.cfg.OnRefusedPath = f
	a.mu.Unlock()
}

// reportRefused calls the refused-path handler when err is a path refusal.
func (a *Agent) reportRefused(jobID, root string, c *wire.Conn, err error) {
	if !errors.Is(err, wire.ErrBadPath) {
		return
	}
	a.mu.Lock()
	f := a.cfg.OnRefusedPath
	a.mu.Unlock()
	if f == nil {
		return
	}
	ev := RefusedPath{JobID: jobID, Root: root, Reason: err.Error()}
	if nc := c.NetConn(); nc != nil {
		ev.Remote = nc.RemoteAddr().String()
		if tc, ok := nc.(*tls.Conn); ok {
			if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
				ev.PeerName = cs.PeerCertificates[0].Subject.CommonName
			}
		}
	}
	f(ev)
}
