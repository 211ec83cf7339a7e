package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/seal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// checkRoot validates a job root on this host: absolute, an existing
// directory (created for a receive job when create is set).
func checkRoot(root string, create bool) error {
	if !filepath.IsAbs(root) {
		return fmt.Errorf("%w: root %q is not an absolute path", wire.ErrBadPath, root)
	}
	st, err := os.Stat(root)
	if errors.Is(err, os.ErrNotExist) && create {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return fmt.Errorf("create root: %w", err)
		}
		return nil
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: root %q", wire.ErrNotFound, root)
		}
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: root %q is not a directory", wire.ErrBadPath, root)
	}
	return nil
}

// claim marks job id as running; false if it already is.
func (a *Agent) claim(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running[id] {
		return false
	}
	a.running[id] = true
	return true
}

func (a *Agent) release(id string) {
	a.mu.Lock()
	delete(a.running, id)
	delete(a.waiting, id)
	a.mu.Unlock()
}

// watchController cancels ctx when the controller connection ends or sends
// Cancel. The job's messages to the controller are only written, never
// read, so this is the only reader.
func watchController(ctx context.Context, c *wire.Conn, cancel context.CancelCauseFunc) {
	go func() {
		for {
			m, err := c.ReadMsg()
			if err != nil {
				cancel(fmt.Errorf("%w: controller connection closed", wire.ErrCanceled))
				return
			}
			if _, ok := m.(*wire.Cancel); ok {
				cancel(fmt.Errorf("%w: by controller", wire.ErrCanceled))
				return
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
}

func (a *Agent) opts(o wire.JobOptions) wire.JobOptions {
	if a.cfg.CheckpointBytes > 0 {
		o.CheckpointBytes = a.cfg.CheckpointBytes
	}
	return o
}

// receive serves ReceiveJob for a controller connection.
func (a *Agent) receive(ctx context.Context, c *wire.Conn, m *wire.ReceiveJob, log *slog.Logger) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h, err := a.AcceptReceive(ctx, *m)
	if err != nil {
		log.Warn("receive job refused", "job", m.JobID, "err", err)
		c.Send(wire.ErrorMsg(err))
		return
	}
	if err := c.Send(&wire.JobAccepted{Token: h.Token, Salt: h.Salt}); err != nil {
		return
	}
	watchController(ctx, c, cancel)
	sum, err := h.Wait(ctx)
	if err != nil {
		c.Send(wire.ErrorMsg(err))
		return
	}
	b, _ := json.Marshal(sum)
	c.Send(&wire.JobDone{Summary: b})
}

// ReceiveHandle is a receive job this agent accepted: give Token and Salt to
// the source agent (wire.SendJob), then Wait for the result.
type ReceiveHandle struct {
	Token string
	Salt  []byte

	done chan struct{}
	sum  mirror.TargetSummary // set before done is closed
	err  error                // set before done is closed
}

// Wait returns the job's result once it has ended, or ctx's error.
func (h *ReceiveHandle) Wait(ctx context.Context) (mirror.TargetSummary, error) {
	select {
	case <-h.done:
		return h.sum, h.err
	case <-ctx.Done():
		return mirror.TargetSummary{}, context.Cause(ctx)
	}
}

// AcceptReceive validates a receive job (options, root: created if
// missing), registers it and runs it in the background: it waits up to
// AttachTimeout for the source agent's Attach with the returned token, then
// runs mirror.Receiver. ctx governs the whole job; canceling it stops the
// job (partial files keep their checkpoints). Errors: wire.ErrBusy when the
// job id is already running here, wire.ErrBadPath / ErrNotFound for a bad
// root, mirror.ErrInvalidOptions, or a payload option error.
func (a *Agent) AcceptReceive(ctx context.Context, m wire.ReceiveJob) (*ReceiveHandle, error) {
	log := a.log.With("job", m.JobID, "role", "target")
	opts := a.opts(m.Opts)
	if err := mirror.Normalize(&opts); err != nil {
		return nil, err
	}
	pl, err := parsePayload(opts)
	if err != nil {
		return nil, err
	}
	if err := checkRoot(m.Root, true); err != nil {
		return nil, err
	}
	salt, err := pl.salt()
	if err != nil {
		return nil, err
	}
	if !a.claim(m.JobID) {
		return nil, fmt.Errorf("%w: %s", wire.ErrBusy, m.JobID)
	}
	var tok [16]byte
	rand.Read(tok[:])
	w := &waitingJob{token: hex.EncodeToString(tok[:]), attach: make(chan attached, 1), gone: make(chan struct{})}
	a.mu.Lock()
	a.waiting[m.JobID] = w
	a.mu.Unlock()
	h := &ReceiveHandle{Token: w.token, Salt: salt, done: make(chan struct{})}
	a.wg.Go(func() {
		defer close(h.done)
		defer a.release(m.JobID)
		defer close(w.gone)
		h.sum, h.err = a.runReceive(ctx, m, opts, pl, salt, w, log)
		if h.err != nil {
			log.Warn("receive job failed", "err", h.err)
		}
	})
	return h, nil
}

func (a *Agent) runReceive(ctx context.Context, m wire.ReceiveJob, opts wire.JobOptions, pl payload, salt []byte,
	w *waitingJob, log *slog.Logger) (mirror.TargetSummary, error) {
	var at attached
	select {
	case at = <-w.attach:
	case <-time.After(AttachTimeout):
		return mirror.TargetSummary{}, fmt.Errorf("%w: no source agent attached within %s", wire.ErrCanceled, AttachTimeout)
	case <-ctx.Done():
		return mirror.TargetSummary{}, context.Cause(ctx)
	}
	defer close(at.done)
	tsalt := seal.TransferSalt(at.attach.Salt, salt)
	if err := pl.verify(tsalt, at.attach); err != nil {
		at.conn.Send(wire.ErrorMsg(err))
		return mirror.TargetSummary{}, err
	}
	if err := at.conn.Send(&wire.JobAccepted{}); err != nil {
		return mirror.TargetSummary{}, fmt.Errorf("attach: %w", err)
	}
	tr, _, err := pl.install(at.conn, tsalt, false)
	if err != nil {
		return mirror.TargetSummary{}, err
	}
	if tr != nil {
		defer tr.Close()
	}
	log.Info("receiving", "root", m.Root)
	r := &mirror.Receiver{Job: mirror.Job{ID: m.JobID, Root: m.Root, Opts: opts}, Conn: at.conn,
		DataDir: a.cfg.DataDir, Log: log}
	sum, err := r.Run(ctx)
	if err == nil {
		log.Info("receive done", "files_written", sum.FilesWritten, "errors", len(sum.Errors))
	}
	a.reportRefused(m.JobID, m.Root, at.conn, err)
	return sum, err
}

// attach hands a source agent's data connection to the waiting job and
// waits until the job is done with it.
func (a *Agent) attach(ctx context.Context, c *wire.Conn, m *wire.Attach) {
	a.mu.Lock()
	w := a.waiting[m.JobID]
	if w != nil && subtle.ConstantTimeCompare([]byte(w.token), []byte(m.Token)) == 1 {
		delete(a.waiting, m.JobID)
	} else {
		w = nil
	}
	a.mu.Unlock()
	if w == nil {
		c.Send(wire.ErrorMsg(fmt.Errorf("%w: %s", wire.ErrUnknownJob, m.JobID)))
		return
	}
	done := make(chan struct{})
	select {
	case w.attach <- attached{conn: c, attach: m, done: done}: // the job answers the Attach
	case <-w.gone:
		c.Send(wire.ErrorMsg(fmt.Errorf("%w: %s ended before the source attached", wire.ErrCanceled, m.JobID)))
		return
	}
	select {
	case <-done:
	case <-w.gone:
	case <-ctx.Done():
	}
}

// send serves SendJob for a controller connection.
func (a *Agent) send(ctx context.Context, c *wire.Conn, m *wire.SendJob, log *slog.Logger) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchController(ctx, c, cancel)
	sum, err := a.Send(ctx, *m, func(p mirror.Progress) { c.Send(&p) })
	if err != nil {
		c.Send(wire.ErrorMsg(err))
		return
	}
	b, _ := json.Marshal(sum)
	c.Send(&wire.JobDone{Summary: b})
}

// Send runs the source half of a job: it dials the target agent at
// m.Target, attaches with m.Token (and the payload key check), streams the
// tree at m.Root and returns the merged summary. onProgress (optional) is
// called about four times a second and once at the end, also when the job
// fails (with the exact counters, for resume accounting). Errors:
// wire.ErrBusy, a bad root or options, a dial failure, the target's error
// (a *wire.RemoteError, e.g. ErrPermission for a wrong payload key), or
// the engine's (see mirror.Sender.Run).
func (a *Agent) Send(ctx context.Context, m wire.SendJob, onProgress func(mirror.Progress)) (mirror.Summary, error) {
	log := a.log.With("job", m.JobID, "role", "source")
	sum, err := a.runSend(ctx, m, onProgress, log)
	if err != nil {
		log.Warn("send job failed", "err", err)
	}
	return sum, err
}

func (a *Agent) runSend(ctx context.Context, m wire.SendJob, onProgress func(mirror.Progress), log *slog.Logger) (mirror.Summary, error) {
	var zero mirror.Summary
	opts := a.opts(m.Opts)
	if err := mirror.Normalize(&opts); err != nil {
		return zero, err
	}
	pl, err := parsePayload(opts)
	if err != nil {
		return zero, err
	}
	if err := checkRoot(m.Root, false); err != nil {
		return zero, err
	}
	salt, err := pl.salt()
	if err != nil {
		return zero, err
	}
	tsalt := seal.TransferSalt(salt, m.TargetSalt)
	check, err := pl.keyCheck(tsalt)
	if err != nil {
		return zero, err
	}
	if !a.claim(m.JobID) {
		return zero, fmt.Errorf("%w: %s", wire.ErrBusy, m.JobID)
	}
	defer a.release(m.JobID)
	dc, err := Dial(ctx, m.Target, a.cfg.ClientTLS)
	if err != nil {
		return zero, fmt.Errorf("dial target agent %s: %w", m.Target, err)
	}
	defer dc.Close()
	if err := dc.Send(&wire.Attach{JobID: m.JobID, Token: m.Token, Salt: salt, KeyCheck: check}); err != nil {
		return zero, fmt.Errorf("attach: %w", err)
	}
	if _, err := wire.Expect[*wire.JobAccepted](dc); err != nil {
		return zero, fmt.Errorf("attach to target: %w", err)
	}
	tr, lim, err := pl.install(dc, tsalt, true)
	if err != nil {
		return zero, err
	}
	defer a.registerLimiter(m.JobID, lim)()
	if tr != nil {
		defer tr.Close()
	}
	log.Info("sending", "root", m.Root, "target", m.Target)
	s := &mirror.Sender{Job: mirror.Job{ID: m.JobID, Root: m.Root, Opts: opts}, Conn: dc,
		DataDir: a.cfg.DataDir, Log: log, OnProgress: onProgress}
	sum, err := s.Run(ctx)
	if err != nil {
		return zero, err
	}
	sum.PayloadBytes, sum.PayloadCompressed = sum.BytesSent, sum.BytesSent
	if tr != nil {
		st := tr.Stats()
		sum.PayloadBytes, sum.PayloadCompressed = st.In, st.Out
	}
	log.Info("send done", "files", sum.Files, "bytes_sent", sum.BytesSent, "wire", sum.BytesOnWire)
	return sum, nil
}

// verify streams the manifest of a tree. Payload options are checked as a
// mirror checks them (a bad level or cipher, or a short key, is refused).
func (a *Agent) verify(ctx context.Context, c *wire.Conn, m *wire.VerifyScan, log *slog.Logger) {
	if _, err := parsePayload(m.Opts); err != nil {
		c.Send(wire.ErrorMsg(err))
		return
	}
	if err := checkRoot(m.Root, false); err != nil {
		c.Send(wire.ErrorMsg(err))
		return
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchController(ctx, c, cancel)
	entries, err := mirror.Manifest(ctx, m.Root, m.Opts, a.cfg.DataDir)
	if err != nil {
		log.Warn("verify scan failed", "err", err)
		c.Send(wire.ErrorMsg(err))
		return
	}
	for len(entries) > 0 {
		n := min(len(entries), 1024)
		if err := c.WriteMsg(&wire.ManifestBatch{Entries: entries[:n]}); err != nil {
			return
		}
		entries = entries[n:]
	}
	c.Send(&wire.ManifestEnd{})
}

// Dial connects to an agent at addr over mutually authenticated TLS and
// exchanges hellos. Returns wire.ErrVersionMismatch (wrapped) when the
// agent speaks another protocol version.
func Dial(ctx context.Context, addr string, cfg *tls.Config) (*wire.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tuneTCP(nc)
	rb := newRecordBuffer(nc)
	tc := tls.Client(rb, cfg)
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	rb.enable()
	c := wire.NewConn(tc)
	c.SetTransportFlush(rb.Flush)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Handshake(hello(wire.RoleAgent)); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}
