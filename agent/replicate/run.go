package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/agent/codec"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// run mirrors, then ships until ctx ends; it resyncs whenever the journal
// overflowed or the target lost its state, and reconnects with backoff
// after a failed connection.
func (s *Source) run(ctx context.Context) {
	defer close(s.done)
	needMirror := true
	backoff := 100 * time.Millisecond
	var sh *shipper
	for ctx.Err() == nil {
		select {
		case <-s.remirror:
			needMirror = true
		default:
		}
		if needMirror {
			if err := s.resync(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				s.log.Warn("sync resync failed, retrying", "err", err)
				s.setErr(err)
				sleep(ctx, backoff)
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			needMirror = false
			backoff = 100 * time.Millisecond
			sh = nil // a fresh connection after a mirror
		}
		if err := s.waitUnpaused(ctx); err != nil {
			break
		}
		s.setState(StateSyncing)
		if sh == nil {
			sh = &shipper{s: s, hashes: map[string]fileHashes{}, links: map[inoKey]string{},
				names: map[string]inoKey{}, groups: map[inoKey]map[string]bool{}, afterMirror: true}
		}
		err := sh.session(ctx)
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, errRemirror):
			needMirror = true
		case errors.Is(err, errPaused):
		default:
			// A cut connection, a killed target, or an op the target could
			// not apply (shipped again in full): replays converge, and a
			// resync once things are quiet double-checks it.
			s.recovered.Store(true)
			s.reconnects.Add(1)
			s.log.Info("sync connection ended, reconnecting", "err", err, "backoff", backoff)
			s.setErr(err)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			if err == nil || sh.progressed.Load() {
				backoff = 50 * time.Millisecond
			}
		}
	}
	s.mu.Lock()
	s.err = ctx.Err()
	s.mu.Unlock()
}

// resync resets the journal when it overflowed and mirrors the whole tree.
// Records appended while the mirror runs are shipped after it (they read
// the then-current state, so the target converges).
func (s *Source) resync(ctx context.Context) error {
	select {
	case <-s.remirror:
	default:
	}
	s.mu.Lock()
	overflowed := s.state == StateRemirrorRequired
	s.mu.Unlock()
	if overflowed {
		if err := s.j.Reset(); err != nil {
			return fmt.Errorf("reset journal: %w", err)
		}
	}
	s.recovered.Store(false)
	s.resyncs.Add(1)
	s.setState(StateMirroring)
	s.log.Info("sync: mirroring", "overflowed", overflowed)
	if err := s.mirror(ctx, ""); err != nil {
		if overflowed {
			s.setState(StateRemirrorRequired)
		}
		return fmt.Errorf("mirror: %w", err)
	}
	s.setErr(nil)
	return nil
}

var (
	errRemirror = errors.New("replicate: remirror required")
	errPaused   = errors.New("replicate: paused")
)

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// dialTarget opens and attaches a sync connection; it returns the
// target's applied sequence number. With payload options (compression,
// encryption) it offers a salt and a key check in SyncAttach (never the
// key), derives the connection's keys from both salts and installs the
// codec on the connection, which then encodes every SyncChunk. Errors: the
// target's refusal (a *wire.RemoteError; ErrPermission when the payload
// keys or ciphers differ), or a dial or option error.
func (s *Source) dialTarget(ctx context.Context) (*wire.Conn, uint64, error) {
	pl, err := codec.ParsePayload(s.cfg.Opts.Compress, s.cfg.Opts.Encrypt, s.cfg.Opts.Key)
	if err != nil {
		return nil, 0, fmt.Errorf("sync payload options: %w", err)
	}
	salt, check, err := pl.Offer()
	if err != nil {
		return nil, 0, err
	}
	c, err := s.cfg.Dial(ctx)
	if err != nil {
		return nil, 0, err
	}
	opts := s.cfg.Opts
	opts.Key = nil // the target has it from the controller
	if err := c.Send(&wire.SyncAttach{JobID: s.cfg.JobID, Root: s.cfg.TargetRoot, Opts: opts, Salt: salt, KeyCheck: check}); err != nil {
		c.Close()
		return nil, 0, err
	}
	acc, err := wire.Expect[*wire.SyncAccepted](c)
	if err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("sync attach: %w", err)
	}
	tr, err := pl.Transform(salt, acc.Salt, true, wire.MaxDataPayload)
	if err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("sync attach: %w", err)
	}
	if tr != nil {
		c.SetCodec(tr) // its zstd coders hold no goroutines: the GC frees them with the connection
	}
	return c, acc.Applied, nil
}

// startSeq returns where shipping resumes given the target's applied
// number, acknowledging what the target applied. Right after a mirror the
// target's number only matters when it lies inside the journal; otherwise
// a target behind the journal's acknowledged point, or ahead of its last
// record, lost its state or belongs to another journal: errRemirror.
func (s *Source) startSeq(applied uint64, afterMirror bool) (uint64, error) {
	acked, last := s.j.Acked(), s.j.Last()
	inside := applied >= acked && applied <= last
	if !inside {
		if afterMirror {
			return acked + 1, nil
		}
		return 0, fmt.Errorf("%w: target applied %d, journal holds %d..%d", errRemirror, applied, acked, last)
	}
	if upto := min(applied, s.j.Durable()); upto > acked {
		if err := s.j.Ack(upto); err != nil {
			return 0, err
		}
		s.acked(int64(upto - acked))
		acked = upto
	}
	return max(applied, acked) + 1, nil
}

// SettleTime is how long capture must be quiet, with nothing left to
// ship, before the resync that follows a recovery.
const SettleTime = time.Second

// settledAfterRecovery reports whether a recovery (cut connection, killed
// target) happened since the last mirror and the sync has since drained
// and settled: then the tree is compared once more with a mirror (time
// mode), as a safety net for anything a replay could not reconstruct.
func (s *Source) settledAfterRecovery(sh *shipper) bool {
	if !s.recovered.Load() {
		return false
	}
	sh.mu.Lock()
	drained := sh.ackSeq >= sh.sentSeq
	sh.mu.Unlock()
	s.mu.Lock()
	quiet := time.Since(s.lastEvent) >= SettleTime
	s.mu.Unlock()
	return drained && quiet && s.j.Last() == s.j.Acked()
}
