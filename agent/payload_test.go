package agent

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/wire"
)

func TestPayloadCompressionAndCiphers(t *testing.T) {
	env := newEnv(t)
	src := t.TempDir()
	text := bytes.Repeat([]byte("ferry moves servers without stopping them. "), 50000) // compressible
	os.WriteFile(filepath.Join(src, "text"), text, 0o644)
	os.WriteFile(filepath.Join(src, "small"), []byte("s"), 0o644)
	// Random and text chunks by turns: its frames go out as split frames.
	mixed := make([]byte, 0, 1<<20)
	for i := 0; len(mixed) < 1<<20; i++ {
		block := make([]byte, 2048)
		rand.Read(block)
		mixed = append(append(mixed, block...), text[i*2048:][:2048]...)
	}
	os.WriteFile(filepath.Join(src, "mixed"), mixed, 0o644)
	key := []byte("a job key of at least sixteen bytes")
	for _, level := range []string{"off", "fast", "balanced", "normal", "extreme"} {
		for _, cipher := range []string{"none", "aes", "sm4"} {
			t.Run(level+"/"+cipher, func(t *testing.T) {
				dst := t.TempDir()
				opts := mirror.Options{Compress: level, Encrypt: cipher}
				if cipher != "none" {
					opts.Key = key
				}
				sum, err := env.mirror(t, src, dst, opts)
				if err != nil {
					t.Fatal(err)
				}
				if d := env.verify(t, src, dst, mirror.Options{}); len(d) > 0 {
					t.Fatalf("differences: %+v", d)
				}
				if level != "off" && sum.PayloadCompressed >= sum.PayloadBytes/2 {
					t.Errorf("compression %s: %d -> %d bytes", level, sum.PayloadBytes, sum.PayloadCompressed)
				}
				if level == "off" && sum.BytesOnWire < int64(len(text)) {
					t.Errorf("off: %d bytes on the wire for %d bytes of content", sum.BytesOnWire, len(text))
				}
			})
		}
	}
}

func TestPayloadWrongKeyFailsBeforeData(t *testing.T) {
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("secret data"), 0o644)
	from, to := env.endpoints(src, dst)
	// Give each agent a different key through two controllers' requests:
	// the target is told one key, the source another.
	key1, key2 := []byte("the first key, 32 bytes long...."), []byte("another key entirely, not first")
	_ = key2
	opts := mirror.Options{Encrypt: "aes", Key: key1}
	ctl := &wrongKeyController{Controller: env.ctl, sourceKey: key2}
	_, err := ctl.mirror(t, from, to, opts)
	if !errors.Is(err, wire.ErrPermission) || !strings.Contains(err.Error(), "keys differ") {
		t.Fatalf("err = %v, want a key mismatch (ErrPermission)", err)
	}
	if strings.Contains(err.Error(), string(key1)) || strings.Contains(err.Error(), string(key2)) {
		t.Fatal("the error message contains a key")
	}
	if _, err := os.Stat(filepath.Join(dst, "f")); err == nil {
		t.Fatal("data moved despite the wrong key")
	}
}

func TestBandwidthLimit(t *testing.T) {
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), make([]byte, 3<<20), 0o644)
	start := time.Now()
	if _, err := env.mirror(t, src, dst, mirror.Options{BWLimit: "1M"}); err != nil {
		t.Fatal(err)
	}
	// 3 MiB at 1 MiB/s with a full bucket at the start: at least ~1.5 s.
	if el := time.Since(start); el < 1500*time.Millisecond || el > 6*time.Second {
		t.Errorf("3 MiB at 1M took %v", el)
	}
}

// wrongKeyController runs Controller.Mirror's protocol by hand so that the
// source agent is given a different key than the target agent.
type wrongKeyController struct {
	*Controller
	sourceKey []byte
}

func (c *wrongKeyController) mirror(t *testing.T, from, to Endpoint, opts mirror.Options) (mirror.Summary, error) {
	t.Helper()
	ctx := t.Context()
	tc, err := Dial(ctx, to.Addr, c.TLS)
	if err != nil {
		return mirror.Summary{}, err
	}
	defer tc.Close()
	if err := tc.Send(&wire.ReceiveJob{JobID: "wk", Root: to.Path, Opts: opts}); err != nil {
		return mirror.Summary{}, err
	}
	acc, err := wire.Expect[*wire.JobAccepted](tc)
	if err != nil {
		return mirror.Summary{}, err
	}
	sc, err := Dial(ctx, from.Addr, c.TLS)
	if err != nil {
		return mirror.Summary{}, err
	}
	defer sc.Close()
	sopts := opts
	sopts.Key = c.sourceKey
	sc.Send(&wire.SendJob{JobID: "wk", Root: from.Path, Target: to.Addr, Token: acc.Token, TargetSalt: acc.Salt, Opts: sopts})
	for {
		m, err := sc.ReadMsg()
		if err != nil {
			return mirror.Summary{}, err
		}
		if e, ok := m.(*wire.Error); ok {
			return mirror.Summary{}, e.Err()
		}
		if _, ok := m.(*wire.JobDone); ok {
			return mirror.Summary{}, nil
		}
	}
}
