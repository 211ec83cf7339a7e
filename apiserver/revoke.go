package apiserver

import (
	"context"
	"math/big"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry"
)

// revocationTTL bounds how stale the revoked-serial cache may be when
// another server process revoked a host.
const revocationTTL = 30 * time.Second

// revocations caches the certificate serials of revoked hosts.
type revocations struct {
	s *Server

	mu       sync.Mutex // guards the fields below
	serials  map[string]bool
	loadedAt time.Time
}

func newRevocations(s *Server) *revocations { return &revocations{s: s} }

func (r *revocations) invalidate() {
	r.mu.Lock()
	r.loadedAt = time.Time{}
	r.mu.Unlock()
}

// IsRevoked reports whether a certificate serial belongs to a revoked host.
// It is the revocation hook of the agents' and the API's TLS configurations
// (pki's isRevoked). When the database cannot be read it fails closed only
// for serials known to be revoked at the last successful load.
func (s *Server) IsRevoked(serial *big.Int) bool {
	if serial == nil {
		return true
	}
	return s.revoked.contains(serial.Text(16))
}

func (r *revocations) contains(serial string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.s.db != nil && time.Since(r.loadedAt) > revocationTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		serials, err := r.load(ctx)
		cancel()
		if err != nil {
			r.s.log.Error("load revoked host certificates", "err", err)
		} else {
			r.serials, r.loadedAt = serials, time.Now()
		}
	}
	return r.serials[serial]
}

func (r *revocations) load(ctx context.Context) (map[string]bool, error) {
	revoked := true
	out := map[string]bool{}
	f := ferry.HostFilter{Revoked: &revoked, Limit: ferry.MaxPageSize}
	for {
		hosts, _, err := r.s.db.ListHosts(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			if h.CertSerial != "" {
				out[h.CertSerial] = true
			}
		}
		if len(hosts) < f.Limit {
			return out, nil
		}
		f.Offset += len(hosts)
	}
}
