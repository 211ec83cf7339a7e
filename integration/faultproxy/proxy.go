// Package faultproxy is a TCP proxy that injects network faults into a data
// path for tests: it can cut every connection and refuse new ones for a
// while, and throttle the link to a fixed rate. These machines have no
// `tc netem`, so faults are injected here, in process.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards every connection it accepts to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	forwarded atomic.Int64 // bytes copied in both directions
	rate      atomic.Int64 // bytes per second in each direction; 0 = unlimited

	mu       sync.Mutex
	conns    map[net.Conn]struct{} // guarded by mu
	cutUntil time.Time             // guarded by mu: refuse connections until then
	closed   bool                  // guarded by mu
	wg       sync.WaitGroup
}

// Listen starts a proxy on listenAddr (e.g. "198.18.0.1:0") towards target.
func Listen(listenAddr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Forwarded is how many bytes the proxy has copied so far, both directions.
func (p *Proxy) Forwarded() int64 { return p.forwarded.Load() }

// SetRate throttles each direction of every connection to bytesPerSec
// (0 removes the limit). It applies to connections already open.
func (p *Proxy) SetRate(bytesPerSec int64) { p.rate.Store(bytesPerSec) }

// Cut closes every open connection and refuses new ones for d: to both ends
// the link is down.
func (p *Proxy) Cut(d time.Duration) {
	p.mu.Lock()
	p.cutUntil = time.Now().Add(d)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Close stops the proxy and every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := time.Now().Before(p.cutUntil) || p.closed
		p.mu.Unlock()
		if down {
			// A refused connection: reset at once, as a dead link would
			// eventually look to the dialer.
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, server) {
		client.Close()
		server.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
	client.Close()
	server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || time.Now().Before(p.cutUntil) {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst in chunks, sleeping as needed to hold the rate.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	start := time.Now()
	var sent int64
	var rateAt int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if r := p.rate.Load(); r > 0 {
				if r != rateAt { // a new rate starts a new measuring window
					rateAt, start, sent = r, time.Now(), 0
				}
				sent += int64(n)
				due := start.Add(time.Duration(float64(sent) / float64(r) * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			} else {
				rateAt = 0
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			p.forwarded.Add(int64(n))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}
