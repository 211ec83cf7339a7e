package replicate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/codec"
	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/seal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// AckInterval is how often the target makes applied records durable and
// acknowledges them while records keep arriving.
const AckInterval = 10 * time.Millisecond

// ErrNeedFull is what the target reports (as a wire.ErrNotFound error) when
// an op cannot be applied against its current tree (a rename whose source
// is missing, a delta or hardlink whose base is missing). The source
// reconnects and ships that record in full.
var ErrNeedFull = errors.New("replicate: target needs the record in full")

// TargetConfig configures the target side of one sync conversation.
type TargetConfig struct {
	// Root is the absolute target root (created if missing).
	Root string
	// DataDir is the agent's data directory; the applied sequence number
	// is kept in DataDir/sync/<hash of job>/applied.
	DataDir string
	JobID   string
	Log     *slog.Logger
	// Attach is the source's SyncAttach (its payload offer); nil: no
	// payload processing.
	Attach *wire.SyncAttach
	// Payload is the target's payload key and cipher for the job (from the
	// controller); the source's attach must offer the same cipher and a
	// check of the same key. Its Level is not used (the source's applies).
	Payload codec.Payload
}

// acceptPayload checks the source's payload offer against the target's
// key and returns the target's salt and the connection's codec (nil when
// neither compression nor a cipher is used). Errors wrap wire.ErrPermission
// when the ciphers or keys differ, wire.ErrProtocol for a bad option.
func acceptPayload(cfg TargetConfig) ([]byte, *codec.Transform, error) {
	at := cfg.Attach
	if at == nil {
		return nil, nil, nil
	}
	pl := cfg.Payload
	var err error
	if pl.Level, err = codec.ParseLevel(at.Opts.Compress); err != nil {
		return nil, nil, fmt.Errorf("%w: compress: %w", wire.ErrProtocol, err)
	}
	srcCipher, err := seal.ParseCipher(at.Opts.Encrypt)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encrypt: %w", wire.ErrProtocol, err)
	}
	if srcCipher != pl.Cipher {
		return nil, nil, fmt.Errorf("%w: the source and target payload ciphers differ (source %v, target %v)", wire.ErrPermission, srcCipher, pl.Cipher)
	}
	salt, err := pl.Accept(at.Salt, at.KeyCheck)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the source and target payload keys differ: %w", wire.ErrPermission, err)
	}
	tr, err := pl.Transform(at.Salt, salt, false, wire.MaxDataPayload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", wire.ErrPermission, err)
	}
	return salt, tr, nil
}

// StateDir returns the directory holding a sync job's state under an
// agent's data directory (the journal on the source, the applied sequence
// number on the target).
func StateDir(dataDir, jobID string) string {
	h := sha256.Sum256([]byte(jobID))
	return filepath.Join(dataDir, "sync", hex.EncodeToString(h[:8]))
}

// ServeTarget serves a SyncAttach conversation on c (the attach message
// already read, cfg.Attach): it checks the source's payload offer (see
// TargetConfig.Payload), answers SyncAccepted with the applied sequence
// number and its salt, installs the payload codec,
// then applies ops in order through an fsys.Root and acknowledges them once
// durable (syncfs of the target file system, then the applied number is
// written and fsync'd). It returns when the connection ends or ctx is done.
//
// Errors: a payload offer that does not match (wire.ErrPermission: keys or
// ciphers differ), a path the peer must not name (fsys.ErrEscapes and friends) or
// an op that cannot be applied ends the conversation with an Error to the
// peer; ErrNeedFull cases are reported with code NotFound.
func ServeTarget(ctx context.Context, c *wire.Conn, cfg TargetConfig) error {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return sendErr(c, fmt.Errorf("create root: %w", err))
	}
	root, err := fsys.OpenRoot(cfg.Root)
	if err != nil {
		return sendErr(c, err)
	}
	defer root.Close()
	st, err := openApplied(StateDir(cfg.DataDir, cfg.JobID))
	if err != nil {
		return sendErr(c, err)
	}
	salt, tr, err := acceptPayload(cfg)
	if err != nil {
		return sendErr(c, err)
	}
	if tr != nil {
		defer tr.Close()
		c.SetCodec(tr) // the source sends no SyncChunk before SyncAccepted
	}
	if err := c.Send(&wire.SyncAccepted{Applied: st.seq, Salt: salt, Epoch: st.epoch}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	temps, err := openIntents(StateDir(cfg.DataDir, cfg.JobID), root)
	if err != nil {
		return sendErr(c, err)
	}
	defer temps.close()
	a := &applier{root: root, log: cfg.Log, temps: temps, noUnnamed: !root.UnnamedWorks()}
	// applied is the Seq of the last complete record of this connection
	// (the source ships in order; after a resync its numbering may restart
	// below what an earlier connection applied), recorded under the
	// source journal's epoch (see journal.Opened).
	var epoch uint64
	if cfg.Attach != nil {
		epoch = cfg.Attach.Epoch
	}
	var mu sync.Mutex // guards applied, appliedEpoch
	applied, appliedEpoch := st.seq, st.epoch
	sent, sentEpoch := st.seq, st.epoch
	// flush makes what was applied durable and acknowledges it; false
	// when the connection or the state file failed.
	var flushMu sync.Mutex
	flush := func() bool {
		flushMu.Lock()
		defer flushMu.Unlock()
		mu.Lock()
		n, e := applied, appliedEpoch
		mu.Unlock()
		if n == sent && e == sentEpoch {
			return true
		}
		if err := st.persist(root, n, e); err != nil {
			cfg.Log.Warn("sync target: persist applied seq", "err", err)
			c.Close()
			return false
		}
		if err := c.Send(&wire.SyncAck{Seq: n}); err != nil {
			return false
		}
		sent, sentEpoch = n, e
		return true
	}
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		t := time.NewTicker(AckInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !flush() {
				return
			}
		}
	}()
	defer func() { cancel(); <-ackDone }()
	for {
		m, err := c.ReadMsg()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		op, ok := m.(*wire.SyncOp)
		if !ok {
			return sendErr(c, fmt.Errorf("%w: unexpected %s in a sync conversation", wire.ErrProtocol, m.Kind()))
		}
		// Records re-shipped after a reconnect are applied again: ops carry
		// the source's current state, so re-applying is harmless.
		if err := a.apply(c, op); err != nil {
			cfg.Log.Warn("sync target: apply failed", "seq", op.Seq, "op", op.Op, "path", op.Path, "err", err)
			flush() // so the source resumes exactly at the failed record
			return sendErr(c, err)
		}
		temps.between()
		if op.Last {
			mu.Lock()
			applied, appliedEpoch = op.Seq, epoch
			mu.Unlock()
		}
	}
}

// sendErr reports err to the peer and returns it.
func sendErr(c *wire.Conn, err error) error {
	switch {
	case errors.Is(err, ErrNeedFull):
		err = fmt.Errorf("%w: %w", wire.ErrNotFound, err)
	case errors.Is(err, fsys.ErrEscapes), errors.Is(err, fsys.ErrInvalidPath), errors.Is(err, fsys.ErrSymlinkInPath):
		// A path the peer must not name.
		err = fmt.Errorf("%w: %w", wire.ErrBadPath, err)
	}
	c.Send(wire.ErrorMsg(err))
	return err
}

// appliedState is the durable applied sequence number of a job's target
// and the source journal epoch it was recorded under.
type appliedState struct {
	path  string
	seq   uint64 // last persisted
	epoch uint64
}

func openApplied(dir string) (*appliedState, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sync state: %w", err)
	}
	s := &appliedState{path: filepath.Join(dir, "applied")}
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("sync state: %w", err)
	case len(b) == 8: // before epochs
		s.seq = binary.LittleEndian.Uint64(b)
	case len(b) == 16:
		s.seq = binary.LittleEndian.Uint64(b)
		s.epoch = binary.LittleEndian.Uint64(b[8:])
	default:
		return nil, fmt.Errorf("sync state: %s is corrupt", s.path)
	}
	return s, nil
}

// persist makes everything applied so far durable (syncfs of the target
// file system), then writes and fsyncs seq and epoch (temp file + rename +
// dir fsync).
func (s *appliedState) persist(root *fsys.Root, seq, epoch uint64) error {
	d, err := root.OpenDir("")
	if err != nil {
		return err
	}
	err = unix.Syncfs(int(d.Fd()))
	d.Close()
	if err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	binary.LittleEndian.PutUint64(b[8:], epoch)
	if err := fsys.WriteFileDurable(s.path, b[:], 0o600); err != nil {
		return err
	}
	s.seq, s.epoch = seq, epoch
	return nil
}
