package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry/agent/bwlimit"
	"github.com/ferry-migrate/ferry/agent/codec"
	"github.com/ferry-migrate/ferry/agent/seal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// payload is how a job's Data frames (and a sync's SyncChunk frames) are
// processed (issue 4): bandwidth limiting on the sender, then zstd
// compression, then AEAD sealing bound to the frame's sequence number; the
// receiver undoes the last two.
type payload struct {
	codec.Payload // level, cipher, secret (never logged: seal.Secret redacts itself)
	sched         *bwlimit.Schedule
}

// parsePayload checks a job's payload options. Errors name the bad option,
// never the key: wire.ErrProtocol for a bad level, cipher or schedule,
// wire.ErrPermission for a short key.
func parsePayload(o wire.JobOptions) (payload, error) {
	var p payload
	var err error
	if p.Payload, err = codec.ParsePayload(o.Compress, o.Encrypt, o.Key); err != nil {
		if errors.Is(err, seal.ErrShortSecret) {
			return p, fmt.Errorf("%w: %w", wire.ErrPermission, err)
		}
		return p, fmt.Errorf("%w: %w", wire.ErrProtocol, err)
	}
	if s := strings.TrimSpace(o.BWLimit); s != "" && s != "off" {
		if p.sched, err = bwlimit.ParseSchedule(s); err != nil {
			return p, fmt.Errorf("%w: bwlimit: %w", wire.ErrProtocol, err)
		}
	}
	return p, nil
}

// salt returns a fresh salt when a cipher is in use.
func (p payload) salt() ([]byte, error) {
	if p.Cipher == seal.None {
		return nil, nil
	}
	return seal.NewSalt()
}

// keyCheck is what the source puts in Attach.
func (p payload) keyCheck(transferSalt []byte) ([]byte, error) {
	if p.Cipher == seal.None {
		return nil, nil
	}
	return seal.KeyCheck(p.Secret, transferSalt)
}

// verify checks the source's Attach against our key. Returns an error
// wrapping wire.ErrPermission ("payload keys differ") on a wrong key.
func (p payload) verify(transferSalt []byte, a *wire.Attach) error {
	if p.Cipher == seal.None {
		return nil
	}
	if err := seal.VerifyKeyCheck(p.Secret, transferSalt, a.KeyCheck); err != nil {
		return fmt.Errorf("%w: the source and target payload keys differ: %w", wire.ErrPermission, err)
	}
	return nil
}

// install puts the payload stages on a data connection and returns the
// transform (nil when neither compression nor a cipher is used) and, on the
// source agent (dialer true), the bandwidth limiter. The source always gets
// a limiter, unlimited when the job has no schedule, so that SetLimits can
// throttle a running transfer later. Data frames are encoded by the
// sender's file readers and decoded by the receiver's file writers, in
// parallel, rather than on the connection's own path
// (wire.ConcurrentCodec, wire.Conn.DeferDataDecode).
func (p payload) install(c *wire.Conn, transferSalt []byte, dialer bool) (*codec.Transform, *bwlimit.Limiter, error) {
	var lim *bwlimit.Limiter
	if dialer {
		lim = bwlimit.NewLimiter(p.sched, nil)
		c.SetLimiter(lim)
	}
	if p.Level == codec.Off && p.Cipher == seal.None {
		return nil, lim, nil
	}
	t, err := codec.NewTransform(codec.TransformConfig{Level: p.Level, Cipher: p.Cipher, Secret: p.Secret,
		Salt: transferSalt, Dialer: dialer, MaxFrameSize: wire.MaxDataPayload})
	if err != nil {
		return nil, nil, err
	}
	c.SetCodec(concurrentTransform{t})
	return t, lim, nil
}

// concurrentTransform adapts a codec.Transform to wire.ConcurrentCodec.
type concurrentTransform struct{ *codec.Transform }

func (t concurrentTransform) NewPayloadDecoder() (wire.PayloadDecoder, error) {
	return t.NewDecoder()
}

func (t concurrentTransform) NewPayloadEncoder() (wire.PayloadEncoder, error) {
	return t.NewEncoder()
}

// caps lists the payload capabilities of this build.
var payloadCaps = []string{wire.CapZstd, wire.CapAESGCM, wire.CapSM4GCM}
