package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ferry-migrate/ferry/agent/codec"
	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/seal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// A sync's payload key reaches the target agent from the controller
// (SyncPrepare), never over the sync data connection: the source's
// SyncAttach only proves it holds the same key. The target keeps the key
// in the job's state directory (mode 0600, beside the applied sequence
// number) so that it survives a restart of the agent.

// syncPayloadFile is the name of the stored payload options in a sync
// job's state directory: the cipher name, a newline, the key.
const syncPayloadFile = "payload"

// syncPrepare serves SyncPrepare: it checks the options and the root and
// stores the job's cipher and key for the source's later attaches.
func (a *Agent) syncPrepare(c *wire.Conn, m *wire.SyncPrepare, log *slog.Logger) {
	err := a.prepareSync(m)
	if err != nil {
		log.Warn("sync prepare refused", "job", m.JobID, "err", err)
		c.Send(wire.ErrorMsg(err))
		return
	}
	c.Send(&wire.JobAccepted{})
}

func (a *Agent) prepareSync(m *wire.SyncPrepare) error {
	pl, err := parsePayload(m.Opts)
	if err != nil {
		return err
	}
	if err := checkRoot(m.Root, true); err != nil {
		return err
	}
	dir := replicate.StateDir(a.cfg.DataDir, m.JobID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(pl.Cipher.String())
	b.WriteByte('\n')
	b.Write(pl.Secret)
	err = fsys.WriteFileDurable(filepath.Join(dir, syncPayloadFile), b.Bytes(), 0o600)
	clear(b.Bytes())
	if err != nil {
		return fmt.Errorf("sync state: store payload options: %w", err)
	}
	return nil
}

// syncPayload returns the payload options the controller registered for a
// sync job on this (target) agent: cipher None when it registered none.
// Errors: an unreadable or corrupt state file (never its content).
func (a *Agent) syncPayload(jobID string) (codec.Payload, error) {
	path := filepath.Join(replicate.StateDir(a.cfg.DataDir, jobID), syncPayloadFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return codec.Payload{}, nil
	}
	if err != nil {
		return codec.Payload{}, fmt.Errorf("sync state: read payload options: %w", err)
	}
	name, key, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return codec.Payload{}, fmt.Errorf("sync state: %s is corrupt", path)
	}
	c, err := seal.ParseCipher(string(name))
	if err != nil {
		return codec.Payload{}, fmt.Errorf("sync state: %s: %w", path, err)
	}
	return codec.Payload{Cipher: c, Secret: seal.Secret(key)}, nil
}

// prepareTarget registers a sync's payload options (key included) with the
// target agent. Errors: a dial failure or the agent's refusal.
func (c *Controller) prepareTarget(ctx context.Context, req SyncRequest) error {
	conn, err := Dial(ctx, req.To.Addr, c.TLS)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Send(&wire.SyncPrepare{JobID: req.JobID, Root: req.To.Path, Opts: req.Opts}); err != nil {
		return err
	}
	_, err = wire.Expect[*wire.JobAccepted](conn)
	return err
}
