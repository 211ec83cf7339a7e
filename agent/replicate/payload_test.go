package replicate_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/agent/codec"
	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/seal"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// tapConn records what is written through it and can corrupt the last
// byte of one write.
type tapConn struct {
	net.Conn
	mu      sync.Mutex
	last    []byte // the last write
	corrupt bool   // flip the last byte of the next write
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.last = append(c.last[:0], p...)
	if c.corrupt {
		c.corrupt = false
		q := bytes.Clone(p)
		q[len(q)-1] ^= 0x40
		p = q
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

var syncKey = seal.Secret("the job's payload key, long enough")

// attachSealed serves a target holding syncKey (AES) and attaches to it
// the way a source does, with key, and installs the codec; it returns the
// connection, its tap and the target's result.
func attachSealed(t *testing.T, root string, key seal.Secret) (*wire.Conn, *tapConn, <-chan error, error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	opts := wire.JobOptions{Compress: "balanced", Encrypt: "aes"}
	src := codec.Payload{Level: codec.Balanced, Cipher: seal.AES, Secret: key}
	salt, check, err := src.Offer()
	if err != nil {
		t.Fatal(err)
	}
	at := &wire.SyncAttach{JobID: "sealed", Root: root, Opts: opts, Salt: salt, KeyCheck: check}
	go func() {
		done <- replicate.ServeTarget(context.Background(), wire.NewConn(a), replicate.TargetConfig{Root: root,
			DataDir: t.TempDir(), JobID: "sealed", Log: quietLog(), Attach: at,
			Payload: codec.Payload{Cipher: seal.AES, Secret: syncKey}})
	}()
	tap := &tapConn{Conn: b}
	c := wire.NewConn(tap)
	t.Cleanup(func() { c.Close() })
	acc, err := wire.Expect[*wire.SyncAccepted](c)
	if err != nil {
		return nil, nil, done, err
	}
	tr, err := src.Transform(salt, acc.Salt, true, wire.MaxDataPayload)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	c.SetCodec(tr)
	return c, tap, done, nil
}

// targetResult waits for the target to end after sending an error.
func targetResult(t *testing.T, c *wire.Conn, done <-chan error) (remote, local error) {
	t.Helper()
	for remote == nil {
		m, err := c.ReadMsg()
		if err != nil {
			t.Fatalf("no error from the target: %v", err)
		}
		if e, ok := m.(*wire.Error); ok {
			remote = e.Err()
		}
	}
	c.Close()
	select {
	case local = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("target did not end")
	}
	return remote, local
}

func putOp(n int) *wire.SyncOp {
	return &wire.SyncOp{Seq: 1, Last: true, Op: wire.SyncOpPut, Path: "f", Content: true,
		Entry: fsys.Entry{Type: fsys.TypeFile, Mode: 0o644, Size: int64(n)}}
}

// TestSyncSealedChunksApply: chunks sealed and compressed by the source's
// codec are opened by the target's and written.
func TestSyncSealedChunksApply(t *testing.T) {
	root := t.TempDir()
	c, _, _, err := attachSealed(t, root, syncKey)
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("sealed content "), 10000)
	go func() {
		c.WriteMsg(putOp(len(content)))
		c.WriteMsg(&wire.SyncChunk{Off: 0, Data: content[:70000]})
		c.WriteMsg(&wire.SyncChunk{Off: 70000, Data: content[70000:]})
		c.WriteMsg(&wire.SyncOpEnd{})
		c.Flush()
	}()
	ack, err := wire.Expect[*wire.SyncAck](c)
	if err != nil || ack.Seq != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "f")); err != nil || !bytes.Equal(b, content) {
		t.Fatalf("content differs (%d bytes, %v)", len(b), err)
	}
}

// TestSyncWrongKeyRefusedAtAttach: a source with another key is refused
// before SyncAccepted, with ErrPermission saying the keys differ.
func TestSyncWrongKeyRefusedAtAttach(t *testing.T) {
	_, _, done, err := attachSealed(t, t.TempDir(), seal.Secret("another key, also long enough...."))
	if !errors.Is(err, wire.ErrPermission) || !strings.Contains(err.Error(), "payload keys differ") {
		t.Fatalf("attach err = %v, want ErrPermission: payload keys differ", err)
	}
	if err := <-done; !errors.Is(err, seal.ErrKeyMismatch) {
		t.Errorf("target err = %v, want a key mismatch", err)
	}
}

// TestSyncTamperedAndReplayedChunksRejected: a chunk modified on the wire
// fails authentication; a chunk sent again (its exact bytes) is refused as
// out of sequence; neither is written.
func TestSyncTamperedAndReplayedChunksRejected(t *testing.T) {
	content := bytes.Repeat([]byte("do not alter "), 1000)
	for _, tc := range []struct {
		name string
		want error
		mess func(c *wire.Conn, tap *tapConn)
	}{
		{"tampered", seal.ErrTampered, func(c *wire.Conn, tap *tapConn) {
			tap.mu.Lock()
			tap.corrupt = true // the last byte of the chunk's frame: its GCM tag
			tap.mu.Unlock()
			c.Send(&wire.SyncChunk{Off: 0, Data: content})
		}},
		{"replayed", wire.ErrProtocol, func(c *wire.Conn, tap *tapConn) {
			c.Send(&wire.SyncChunk{Off: 0, Data: content[:100]})
			tap.mu.Lock()
			frame := bytes.Clone(tap.last)
			tap.mu.Unlock()
			tap.Conn.Write(frame)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			c, tap, done, err := attachSealed(t, root, syncKey)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				c.Send(putOp(len(content)))
				tc.mess(c, tap)
				c.Send(&wire.SyncOpEnd{})
			}()
			remote, local := targetResult(t, c, done)
			if local == nil || !errors.Is(local, tc.want) {
				t.Errorf("target err = %v, want %v", local, tc.want)
			}
			if remote == nil {
				t.Error("no error sent to the source")
			}
			if _, err := os.Stat(filepath.Join(root, "f")); err == nil {
				t.Error("the file was written")
			}
		})
	}
}

// TestSyncKillTargetSealed: with compression and AES, the target agent is
// killed mid-workload and restarted; it finds the job's key in its data
// directory (the controller registered it once, at StartSync), the source
// reattaches, and the trees converge.
func TestSyncKillTargetSealed(t *testing.T) {
	r := newRig(t)
	r.opts = mirror.Options{Compress: "fast", Encrypt: "aes", Key: []byte("the sync's payload key, 32 bytes")}
	r.start()
	var applied int64
	r.work(5, 3*time.Second, func() {
		r.ta.kill9()
		time.Sleep(200 * time.Millisecond)
		r.ta = spawnAgent(t, r.ca, r.tdir)
		r.px.setBackend(r.ta.addr)
		applied = r.status().AppliedTotal
	})
	r.converge(10 * time.Second)
	// Converging alone could come from a resync mirror; the records must
	// have been applied through the sealed sync connection too.
	deadline := time.Now().Add(10 * time.Second)
	for st := r.status(); st.BacklogRecords > 0 || st.AppliedTotal <= applied; st = r.status() {
		if time.Now().After(deadline) {
			t.Fatalf("no records applied after the target restarted: %+v (applied %d before)", st, applied)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
