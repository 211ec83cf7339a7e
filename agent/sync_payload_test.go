package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// countingProxy forwards TCP connections to backend and counts the bytes
// the dialing side sends through it (TLS records included).
type countingProxy struct {
	ln   net.Listener
	up   atomic.Int64
	wg   sync.WaitGroup
	mu   sync.Mutex
	open []net.Conn
}

func newCountingProxy(t *testing.T, backend string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, c, d)
			p.mu.Unlock()
			go func() {
				io.Copy(d, countReader{c, &p.up})
				d.Close()
			}()
			go func() { io.Copy(c, d); c.Close() }()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.open {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// countReader counts what is read through it, as it is read.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// syncUntilConverged starts a sync src → dst (through to), waits until it
// syncs, calls write, and waits until a compare finds no difference.
func syncUntilConverged(t *testing.T, env *testEnv, jobID, src, dst string, to Endpoint, opts mirror.Options, write func()) (final wire.SyncStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	from, direct := env.endpoints(src, dst)
	sess, err := env.ctl.StartSync(ctx, SyncRequest{JobID: jobID, From: from, To: to, Opts: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		st, err := sess.Stop()
		if err != nil {
			t.Errorf("stop: %v", err)
		}
		final = st
	}()
	for {
		st, err := sess.Next()
		if err != nil {
			t.Fatal(err)
		}
		if st.Error != "" {
			t.Fatalf("sync error: %s", st.Error)
		}
		if st.State == replicate.StateSyncing {
			break
		}
	}
	write()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := env.ctl.Verify(ctx, from, direct, mirror.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(d) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d differences after 30 s, e.g. %+v", len(d), d[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSyncPayloadEveryCombination syncs compressible and random content
// with every compression level × cipher: the trees converge, and the bytes
// the source sends to the target are fewer with compression.
func TestSyncPayloadEveryCombination(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify change capture")
	}
	env := newEnv(t)
	text := bytes.Repeat([]byte("ferry keeps the target current while the source keeps serving. "), 40000) // ~2.5 MiB
	random := make([]byte, 256<<10)
	rng := rand.NewChaCha8([32]byte{7})
	rng.Read(random)
	key := []byte("a sync key of at least sixteen bytes")
	for _, cipher := range []string{"none", "aes", "sm4"} {
		t.Run(cipher, func(t *testing.T) {
			t.Parallel()
			syncEveryLevel(t, env, cipher, text, random, key)
		})
	}
}

// syncEveryLevel runs the syncs of TestSyncPayloadEveryCombination for one
// cipher, level off first.
func syncEveryLevel(t *testing.T, env *testEnv, cipher string, text, random, key []byte) {
	var offBytes int64
	for _, level := range []string{"off", "fast", "balanced", "normal", "extreme"} {
		t.Run(level, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			px := newCountingProxy(t, env.dst.Addr().String())
			opts := mirror.Options{Compress: level, Encrypt: cipher}
			if cipher != "none" {
				opts.Key = key
			}
			st := syncUntilConverged(t, env, "sp-"+level+"-"+cipher, src, dst, Endpoint{Addr: px.ln.Addr().String(), Path: dst}, opts, func() {
				os.WriteFile(filepath.Join(src, "text"), text, 0o644)
				os.WriteFile(filepath.Join(src, "random"), random, 0o644)
			})
			n := px.up.Load()
			// The status reports the content before and after the codec.
			if want := int64(len(text) + len(random)); st.ContentBytes < want {
				t.Errorf("status: %d content bytes shipped, want at least %d", st.ContentBytes, want)
			}
			if level == "off" && cipher == "none" && st.ContentWireBytes != st.ContentBytes {
				t.Errorf("status: off/none sent %d bytes for %d of content", st.ContentWireBytes, st.ContentBytes)
			}
			if level != "off" && st.ContentWireBytes >= st.ContentBytes/2 {
				t.Errorf("status: %s sent %d bytes for %d of content", level, st.ContentWireBytes, st.ContentBytes)
			}
			if n < int64(len(random)) {
				t.Fatalf("%d bytes crossed the connection for %d bytes of random content", n, len(random))
			}
			if level == "off" {
				offBytes = n
				if n < int64(len(text)+len(random)) {
					t.Errorf("off: %d bytes crossed for %d bytes of content", n, len(text)+len(random))
				}
				return
			}
			t.Logf("%s/%s: %d bytes on the wire (off: %d)", level, cipher, n, offBytes)
			if offBytes > 0 && n > offBytes/3 {
				t.Errorf("%s: %d bytes crossed the connection, off sent %d", level, n, offBytes)
			}
		})
	}
}

// TestSyncWrongKeyFailsAtAttach: the target agent holds one key (from the
// controller), the source another: the attach is refused with an error
// that says the payload keys differ, and no content reaches the target.
func TestSyncWrongKeyFailsAtAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: fanotify change capture")
	}
	env := newEnv(t)
	src, dst := t.TempDir(), t.TempDir()
	from, to := env.endpoints(src, dst)
	key1, key2 := []byte("the target's key, 32 bytes long."), []byte("the source's key, another one..")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := SyncRequest{JobID: "wrong-key", From: from, To: to, Opts: mirror.Options{Encrypt: "aes", Key: key1}}
	if err := mirror.Normalize(&req.Opts); err != nil {
		t.Fatal(err)
	}
	if err := env.ctl.prepareTarget(ctx, req); err != nil {
		t.Fatal(err)
	}
	// The source agent is told another key (StartSync would give both the
	// same one).
	conn, err := Dial(ctx, from.Addr, env.ctl.TLS)
	if err != nil {
		t.Fatal(err)
	}
	sopts := req.Opts
	sopts.Key = key2
	if err := conn.Send(&wire.SyncStart{JobID: req.JobID, Root: src, Target: to.Addr, TargetRoot: dst, Self: from.Addr, Opts: sopts}); err != nil {
		t.Fatal(err)
	}
	sess := &SyncSession{conn: conn}
	defer sess.Stop()
	var msg string
	for msg == "" {
		st, err := sess.Next()
		if err != nil {
			t.Fatal(err)
		}
		if st.State == replicate.StateSyncing {
			// The source mirrored the (empty) tree; now it attaches.
			os.WriteFile(filepath.Join(src, "f"), []byte("secret content"), 0o644)
		}
		msg = st.Error
	}
	if !strings.Contains(msg, "payload keys differ") || !strings.Contains(msg, wire.ErrPermission.Error()) {
		t.Fatalf("sync error %q, want a payload key mismatch (permission denied)", msg)
	}
	if strings.Contains(msg, string(key1)) || strings.Contains(msg, string(key2)) {
		t.Fatal("the error message contains a key")
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dst, "f")); err == nil {
		t.Fatal("content reached the target despite the wrong key")
	}
	// The target keeps the key it was given, readable by root only.
	fi, err := os.Stat(filepath.Join(replicate.StateDir(env.dst.cfg.DataDir, req.JobID), syncPayloadFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored payload options: %v, %v", fi, err)
	}
}

// TestSyncPrepareRefusesBadOptions: a short key or an unknown cipher is
// refused by the target agent at SyncPrepare, and so by StartSync.
func TestSyncPrepareRefusesBadOptions(t *testing.T) {
	env := newEnv(t)
	from, to := env.endpoints(t.TempDir(), t.TempDir())
	for _, o := range []mirror.Options{{Encrypt: "aes", Key: []byte("short")}, {Encrypt: "rot13"}} {
		_, err := env.ctl.StartSync(context.Background(), SyncRequest{JobID: "bad", From: from, To: to, Opts: o})
		if err == nil || !strings.Contains(err.Error(), "target agent") {
			t.Errorf("%s: err = %v, want the target agent's refusal", fmt.Sprint(o.Encrypt), err)
		}
	}
}
