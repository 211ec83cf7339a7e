package replicate

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/ferry-migrate/ferry/agent/codec"
	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/journal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// run mirrors, then ships until ctx ends; it resyncs whenever the journal
// overflowed or the target lost its state, and reconnects with backoff
// after a failed connection.
func (s *Source) run(ctx context.Context) {
	defer close(s.done)
	needMirror := true
	// A journal with records means the agent restarted mid-sync: what the
	// replay of those records could not reconstruct (changes made while
	// no capture ran, a change racing the restart) is compared once more
	// by a resync when things are quiet, as after a cut connection.
	restarted := s.j.Last() > 0
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
			if restarted {
				restarted = false
				s.recovered.Store(true)
			}
		}
		if err := s.waitUnpaused(ctx); err != nil {
			break
		}
		s.setState(StateSyncing)
		if sh == nil {
			s.unproven.Store(0)
			sh = &shipper{s: s, hashes: map[string]fileHashes{}, unproven: map[string]bool{}, links: map[inoKey]string{},
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
			if !errors.Is(err, errRefused) {
				// A refused op reconnects at once: the target is up and
				// has made what came before durable (see session).
				sleep(ctx, backoff)
			}
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

// errRefused marks a session the target ended with ErrNeedFull: the next
// session starts at once, with that record in full.
var errRefused = errors.New("op refused by the target")

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
	if err := s.recheckUnverified(ctx); err != nil {
		return err
	}
	s.setErr(nil)
	return nil
}

// recheckUnverified compares strictly the files whose appends were shipped
// on a sampled check not yet proven (a time-mode resync trusts their size
// and mtime): their directories through MirrorStrict, or, without it, by
// journaling them so they ship again in full.
func (s *Source) recheckUnverified(ctx context.Context) error {
	ps := s.unverified.take()
	if len(ps) == 0 {
		return nil
	}
	s.log.Info("sync: comparing appended files strictly", "files", len(ps))
	if s.cfg.MirrorStrict == nil {
		recs := make([]journal.Record, len(ps))
		for i, p := range ps {
			recs[i] = journal.Record{Op: journal.OpModify, Path: p}
		}
		if _, err := s.j.Append(recs...); err != nil {
			return fmt.Errorf("journal the unverified files: %w", err)
		}
		s.unverified.clearAll(ps)
		return nil
	}
	root, err := fsys.OpenRoot(s.cfg.Root)
	if err != nil {
		return err
	}
	defer root.Close()
	done := map[string]bool{}
	for _, p := range ps {
		dir := path.Dir(p)
		if dir == "." {
			dir = ""
		}
		if done[dir] {
			continue
		}
		done[dir] = true
		if _, err := root.Lstat(dir); err != nil {
			continue // gone: the resync removed it on the target too
		}
		sum, err := s.cfg.MirrorStrict(ctx, dir)
		s.mirrorBytes.Add(sum.BytesOnWire)
		if err != nil {
			return fmt.Errorf("strict compare of %q: %w", dir, err)
		}
	}
	s.unverified.clearAll(ps)
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
func (s *Source) dialTarget(ctx context.Context) (*wire.Conn, *wire.SyncAccepted, error) {
	pl, err := codec.ParsePayload(s.cfg.Opts.Compress, s.cfg.Opts.Encrypt, s.cfg.Opts.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sync payload options: %w", err)
	}
	salt, check, err := pl.Offer()
	if err != nil {
		return nil, nil, err
	}
	c, err := s.cfg.Dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := s.cfg.Opts
	opts.Key = nil // the target has it from the controller
	epoch, _ := s.j.Opened()
	if err := c.Send(&wire.SyncAttach{JobID: s.cfg.JobID, Root: s.cfg.TargetRoot, Opts: opts, Salt: salt, KeyCheck: check, Epoch: epoch}); err != nil {
		c.Close()
		return nil, nil, err
	}
	acc, err := wire.Expect[*wire.SyncAccepted](c)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("sync attach: %w", err)
	}
	tr, err := pl.Transform(salt, acc.Salt, true, wire.MaxDataPayload)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("sync attach: %w", err)
	}
	if tr != nil {
		c.SetCodec(tr) // its zstd coders hold no goroutines: the GC frees them with the connection
	}
	return c, acc, nil
}

// startSeq returns where shipping resumes given the target's applied
// number (recorded under the journal epoch epoch), acknowledging what the
// target applied. Right after a mirror the target's number only matters
// when it lies inside the journal; otherwise a target behind the journal's
// acknowledged point, or ahead of its last record, lost its state or
// belongs to another journal: errRemirror.
//
// Records ship before they are durable (journal.ReadWritten): after a
// crash of this machine the target may have applied records the journal
// lost, whose numbers new records then carry. A number above what the
// journal recovered, taken under an earlier epoch, is such a lost record:
// shipping resumes after what was recovered, and the mirror that follows
// every restart covered the lost changes.
func (s *Source) startSeq(applied, epoch uint64, afterMirror bool) (uint64, error) {
	if cur, recovered := s.j.Opened(); epoch != cur && applied > recovered {
		s.log.Info("sync: the target applied records lost in a crash of this host; resuming after the recovered ones",
			"applied", applied, "recovered", recovered)
		applied = recovered
	}
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
