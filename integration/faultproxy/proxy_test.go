package faultproxy

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestForwardsBytesUnchanged(t *testing.T) {
	p, err := Listen("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("bytes changed in transit")
	}
	// The proxy counts a chunk once its write returned, which can be just
	// after the client read it.
	for deadline := time.Now().Add(2 * time.Second); p.Forwarded() < 2<<20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if p.Forwarded() != 2<<20 {
		t.Fatalf("forwarded %d bytes, want %d", p.Forwarded(), 2<<20)
	}
}

func TestCutClosesAndRefusesThenRecovers(t *testing.T) {
	p, err := Listen("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	p.Cut(500 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("an open connection survived the cut")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		c2.SetReadDeadline(time.Now().Add(2 * time.Second))
		c2.Write([]byte("y"))
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Fatal("a new connection worked during the cut")
		}
		c2.Close()
	}
	time.Sleep(600 * time.Millisecond)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	c3.Write([]byte("z"))
	b := make([]byte, 1)
	c3.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(c3, b); err != nil || b[0] != 'z' {
		t.Fatalf("after the cut: %v %q", err, b)
	}
}

func TestRateLimitHolds(t *testing.T) {
	p, err := Listen("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetRate(1 << 20)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 1536 << 10 // 1.5 MiB at 1 MiB/s: about 1.5 s
	start := time.Now()
	go c.Write(make([]byte, n))
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if el < 1200*time.Millisecond || el > 4*time.Second {
		t.Fatalf("1.5 MiB at 1 MiB/s took %s", el)
	}
}
