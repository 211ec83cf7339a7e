package mirror

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/ferry-migrate/ferry/agent/wire"
)

// cutConn fails every write once limit bytes have been written, and closes
// the connection: a cable pulled at a chosen byte.
type cutConn struct {
	net.Conn
	mu      sync.Mutex
	written int64
	limit   int64
}

var errCut = errors.New("injected cut")

func (c *cutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.written+int64(len(p)) > c.limit {
		n := int(c.limit - c.written)
		if n > 0 {
			n, _ = c.Conn.Write(p[:n])
			c.written += int64(n)
		}
		c.Conn.Close()
		return n, errCut
	}
	n, err := c.Conn.Write(p)
	c.written += int64(n)
	return n, err
}

func buildResumeTree(t *testing.T, src string) int64 {
	var total int64
	for i := range 3 {
		b := randBytes(uint64(100+i), 40<<20)
		writeFile(t, filepath.Join(src, "big"+strconv.Itoa(i)), b)
		total += int64(len(b))
	}
	for i := range 200 {
		b := randBytes(uint64(i), 4096)
		writeFile(t, filepath.Join(src, "small", strconv.Itoa(i)), b)
		total += int64(len(b))
	}
	return total
}

// TestResumeAfterCut cuts the data connection at seeded random points; the
// rerun must complete the tree and re-send at most 5% of it.
func TestResumeAfterCut(t *testing.T) {
	src := t.TempDir()
	total := buildResumeTree(t, src)
	opts := Options{CheckpointBytes: 512 << 10}
	for seed := range uint64(4) {
		t.Run("seed"+strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			cutAt := total/20 + rng.Int64N(total*9/10)
			dst, data := t.TempDir(), t.TempDir()
			var cc *cutConn
			res := mirrorOnce(t, src, dst, data, opts, func(s *Sender, r *Receiver) {
				// Re-wrap the sender's connection with the cutter.
				cc = &cutConn{Conn: s.Conn.NetConn(), limit: cutAt}
				s.Conn = wire.NewConn(cc)
				if seed%2 == 1 {
					// Odd seeds: the receiver's side is cut too (its
					// answers stop), as when the target host vanishes.
					r.Conn = wire.NewConn(&cutConn{Conn: r.Conn.NetConn(), limit: 1 << 40})
				}
			})
			if res.serr == nil {
				t.Fatalf("cut at %d of %d: the first run did not fail", cutAt, total)
			}
			w1 := cc.written
			sum := mustMirror(t, src, dst, data, opts)
			mustIdentical(t, src, dst, opts)
			resent := w1 + sum.BytesOnWire - total
			t.Logf("cut at %d: run 1 wrote %d, run 2 wrote %d (resumed %d files, %d bytes kept): re-sent %d bytes = %.2f%%",
				cutAt, w1, sum.BytesOnWire, sum.ResumedFiles, sum.ResumedBytes, resent, 100*float64(resent)/float64(total))
			if resent > total/20 {
				t.Errorf("re-sent %d bytes, more than 5%% of %d", resent, total)
			}
			left, _ := os.ReadDir(filepath.Join(JobDir(data, "job1"), "partial"))
			if len(left) != 0 {
				t.Errorf("%d checkpoints left after a complete run", len(left))
			}
		})
	}
}
