package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/apiserver"
)

func TestAdvertisedAddr(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40001}
	first := "127.0.0.1"
	if a := hostAddresses(); len(a) > 0 {
		first = a[0]
	}
	for _, c := range []struct {
		listen, advertise string
		bound             net.Addr
		want              string
	}{
		{"10.1.2.3:7780", "proxy.example:9000", nil, "proxy.example:9000"},
		{"10.1.2.3:7780", "", nil, "10.1.2.3:7780"},
		{"127.0.0.1:0", "", bound, "127.0.0.1:40001"},
		{"127.0.0.1:0", "", nil, ""},
		{":7780", "", nil, net.JoinHostPort(first, "7780")},
		{"0.0.0.0:7781", "", nil, net.JoinHostPort(first, "7781")},
		{"[::]:7782", "", nil, net.JoinHostPort(first, "7782")},
	} {
		if got := advertisedAddr(c.listen, c.advertise, c.bound); got != c.want {
			t.Errorf("advertisedAddr(%q, %q, %v) = %q, want %q", c.listen, c.advertise, c.bound, got, c.want)
		}
	}
}

func TestSameFactsIgnoresFreeSpace(t *testing.T) {
	a := apiserver.HostFacts{Hostname: "h", Disks: []ferry.HostDisk{{Device: "/dev/sda", TotalBytes: 100, FreeBytes: 50}}}
	b := a
	b.Disks = []ferry.HostDisk{{Device: "/dev/sda", TotalBytes: 100, FreeBytes: 10}}
	if !sameFacts(a, b) {
		t.Error("facts differing only in free space reported as changed")
	}
	b.Disks[0].TotalBytes = 200
	if sameFacts(a, b) {
		t.Error("a resized disk not reported as a change")
	}
	c := a
	c.DataAddr = "10.0.0.1:7780"
	if sameFacts(a, c) {
		t.Error("a new data address not reported as a change")
	}
}

// fakeControlPlane answers heartbeats with a scripted sequence of statuses
// and records the facts it receives.
type fakeControlPlane struct {
	mu       sync.Mutex // guards the fields below
	statuses []int
	facts    []*apiserver.HostFacts
	beats    int
}

func (f *fakeControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in apiserver.HeartbeatInput
	json.NewDecoder(r.Body).Decode(&in.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	status := http.StatusOK
	if f.beats < len(f.statuses) {
		status = f.statuses[f.beats]
	}
	f.beats++
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	switch status {
	case http.StatusOK:
		f.facts = append(f.facts, in.Body.Facts)
		json.NewEncoder(w).Encode(map[string]any{"hostId": "h", "time": time.Now(), "revokedSerials": []string{"abc123"}})
	default:
		json.NewEncoder(w).Encode(map[string]any{"status": status, "detail": "scripted"})
	}
}

// TestHeartbeatsSurviveOutagesAndStopWhenRevoked: a server answering 503 is
// survived, facts go with the first acknowledged beat only, revoked
// serials reach the data channel's check, and a 401 stops the agent.
func TestHeartbeatsSurviveOutagesAndStopWhenRevoked(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	if err := pki.InitCA(caDir, "test CA"); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeControlPlane{statuses: []int{503, 503, 200, 200, 200, 401}}
	ts := httptest.NewUnstartedServer(fake)
	srvCert, srvKey, _ := ca.Issue("server", nil, time.Hour)
	kp, _ := tls.X509KeyPair(srvCert, srvKey)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	ts.StartTLS()
	defer ts.Close()

	enDir := filepath.Join(dir, "data", enrollmentDir)
	os.MkdirAll(enDir, 0o700)
	cert, key, _ := ca.Issue("h", nil, time.Hour)
	os.WriteFile(filepath.Join(enDir, pki.NodeCertFile), cert, 0o600)
	os.WriteFile(filepath.Join(enDir, pki.NodeKeyFile), key, 0o600)
	os.WriteFile(filepath.Join(enDir, pki.RootsFile), ca.CertPEM, 0o600)
	meta, _ := json.Marshal(enrollment{HostID: "h", ServerURL: ts.URL})
	os.WriteFile(filepath.Join(enDir, enrollmentFile), meta, 0o600)

	en, err := loadEnrollment(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := en.identity()
	if err != nil {
		t.Fatal(err)
	}
	c := &controlledAgent{o: agentControlOptions{heartbeatEvery: 10 * time.Millisecond}, en: en, id: id,
		dataAddr: "127.0.0.1:7780", log: slog.New(slog.DiscardHandler)}
	c.revoked.Store(&map[string]bool{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.heartbeats(ctx); !errors.Is(err, errRevoked) {
		t.Fatalf("heartbeats ended with %v, want errRevoked", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.beats != 6 || len(fake.facts) != 3 {
		t.Fatalf("%d beats, %d acknowledged", fake.beats, len(fake.facts))
	}
	if fake.facts[0] == nil || fake.facts[0].DataAddr != "127.0.0.1:7780" || fake.facts[0].Hostname == "" {
		t.Errorf("first acknowledged beat's facts: %+v", fake.facts[0])
	}
	if fake.facts[1] != nil || fake.facts[2] != nil {
		t.Errorf("unchanged facts sent again: %+v %+v", fake.facts[1], fake.facts[2])
	}
	if !(*c.revoked.Load())["abc123"] {
		t.Error("revoked serials from the heartbeat reply not kept")
	}
}

func TestEnrollURLMustBeHTTPS(t *testing.T) {
	for _, u := range []string{"http://x:8080", "x:8443", "https://"} {
		if _, err := validateEnrollURL(u); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	if _, err := validateEnrollURL("https://ferry.example:8443"); err != nil {
		t.Error(err)
	}
}
