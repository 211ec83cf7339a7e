package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if err := InitCA(dir, name); err != nil {
		t.Fatal(err)
	}
	return dir
}

func issue(t *testing.T, caDir, cn string) *Identity {
	t.Helper()
	id, err := LoadOrIssue(caDir, filepath.Join(t.TempDir(), cn), cn, []string{"192.0.2.7", "agent.example"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type result struct {
	serverErr, clientErr error
	serverState          tls.ConnectionState
	clientState          tls.ConnectionState
}

// handshake runs a real TCP TLS connection: the client sends "ping", the
// server answers "pong". Errors on either side are returned.
func handshake(t *testing.T, server, client *tls.Config) result {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var r result
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			r.serverErr = err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, server)
		if err := tc.Handshake(); err != nil {
			r.serverErr = err
			return
		}
		r.serverState = tc.ConnectionState()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil {
			r.serverErr = err
			return
		}
		if string(buf) != "ping" {
			r.serverErr = errors.New("server got " + string(buf))
			return
		}
		if _, err := tc.Write([]byte("pong")); err != nil {
			r.serverErr = err
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cfg := client.Clone()
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(c, cfg)
	r.clientErr = func() error {
		if err := tc.Handshake(); err != nil {
			return err
		}
		r.clientState = tc.ConnectionState()
		if _, err := tc.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(tc, buf); err != nil {
			return err
		}
		if string(buf) != "pong" {
			return errors.New("client got " + string(buf))
		}
		return nil
	}()
	tc.Close()
	<-done
	return r
}

func TestMutualTLS13(t *testing.T) {
	ca := newCA(t, "ferry test CA")
	a, b := issue(t, ca, "agent-a"), issue(t, ca, "agent-b")
	r := handshake(t, a.ServerTLS(), b.ClientTLS())
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("server: %v, client: %v", r.serverErr, r.clientErr)
	}
	if r.serverState.Version != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", r.serverState.Version)
	}
	if got := r.serverState.PeerCertificates[0].Subject.CommonName; got != "agent-b" {
		t.Errorf("server sees client %q, want agent-b", got)
	}
	if got := r.clientState.PeerCertificates[0].Subject.CommonName; got != "agent-a" {
		t.Errorf("client sees server %q, want agent-a", got)
	}
	// And the other way round: each identity works as server and client.
	if r := handshake(t, b.ServerTLS(), a.ClientTLS()); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("reverse: server: %v, client: %v", r.serverErr, r.clientErr)
	}
}

func TestForeignCARefused(t *testing.T) {
	good := issue(t, newCA(t, "ca one"), "agent-a")
	foreign := issue(t, newCA(t, "ca two"), "intruder")

	r := handshake(t, good.ServerTLS(), foreign.ClientTLS())
	if r.serverErr == nil || r.clientErr == nil {
		t.Fatalf("foreign client accepted: server %v, client %v", r.serverErr, r.clientErr)
	}
	if !strings.Contains(r.serverErr.Error(), "certificate") {
		t.Errorf("server error does not mention the certificate: %v", r.serverErr)
	}
	r = handshake(t, foreign.ServerTLS(), good.ClientTLS())
	if r.clientErr == nil {
		t.Fatal("client accepted a server from another CA")
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(r.clientErr, &unknown) {
		t.Errorf("client error = %v, want unknown authority", r.clientErr)
	}
}

func TestClientWithoutCertificateRefused(t *testing.T) {
	ca := newCA(t, "ca")
	srv := issue(t, ca, "agent-a")
	client := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: srv.Roots}
	r := handshake(t, srv.ServerTLS(), client)
	if r.serverErr == nil || r.clientErr == nil {
		t.Fatalf("client without certificate accepted: server %v, client %v", r.serverErr, r.clientErr)
	}
	if !strings.Contains(r.serverErr.Error(), "certificate") {
		t.Errorf("server error = %v", r.serverErr)
	}
}

func TestTLS12Refused(t *testing.T) {
	ca := newCA(t, "ca")
	a, b := issue(t, ca, "agent-a"), issue(t, ca, "agent-b")
	old := b.ClientTLS()
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	r := handshake(t, a.ServerTLS(), old)
	if r.serverErr == nil || r.clientErr == nil {
		t.Fatalf("TLS 1.2 client accepted: server %v, client %v", r.serverErr, r.clientErr)
	}
	// And a TLS 1.2-only server is refused by our client.
	oldSrv := a.ServerTLS()
	oldSrv.MinVersion, oldSrv.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if r := handshake(t, oldSrv, b.ClientTLS()); r.clientErr == nil {
		t.Fatal("client accepted a TLS 1.2 server")
	}
}

func TestRevokedRefused(t *testing.T) {
	ca := newCA(t, "ca")
	a, b := issue(t, ca, "agent-a"), issue(t, ca, "agent-b")
	revoked := b.Serial()
	a.IsRevoked = func(s *big.Int) bool { return s.Cmp(revoked) == 0 }

	r := handshake(t, a.ServerTLS(), b.ClientTLS())
	if !errors.Is(r.serverErr, ErrRevoked) {
		t.Fatalf("server error = %v, want ErrRevoked", r.serverErr)
	}
	if r.clientErr == nil {
		t.Fatal("revoked client saw success")
	}
	// The client side consults the hook too.
	r = handshake(t, b.ServerTLS(), a.ClientTLS())
	if !errors.Is(r.clientErr, ErrRevoked) {
		t.Fatalf("client error = %v, want ErrRevoked", r.clientErr)
	}
	// A non-revoked peer still passes with the hook installed.
	c := issue(t, ca, "agent-c")
	if r := handshake(t, a.ServerTLS(), c.ClientTLS()); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("non-revoked peer: server %v, client %v", r.serverErr, r.clientErr)
	}
}

func TestVerifyPeerName(t *testing.T) {
	ca := newCA(t, "ca")
	a, b := issue(t, ca, "agent-a"), issue(t, ca, "agent-b")
	b.VerifyPeerName = true
	// handshake dials 127.0.0.1, which every certificate names.
	if r := handshake(t, a.ServerTLS(), b.ClientTLS()); r.clientErr != nil {
		t.Fatalf("SAN 127.0.0.1 not accepted: %v", r.clientErr)
	}
	cfg := b.ClientTLS()
	cfg.ServerName = "198.51.100.1"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			tls.Server(c, a.ServerTLS()).Handshake()
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var hostErr x509.HostnameError
	if err := tls.Client(c, cfg).Handshake(); !errors.As(err, &hostErr) {
		t.Fatalf("dialing an unnamed IP with VerifyPeerName: %v, want HostnameError", err)
	}
}

func TestInitCARefusesOverwriteAndProtectsKey(t *testing.T) {
	dir := newCA(t, "ca")
	crt, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if err := InitCA(dir, "again"); !errors.Is(err, ErrExists) {
		t.Fatalf("second InitCA: %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if string(crt) != string(after) {
		t.Fatal("InitCA changed an existing CA")
	}
	st, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode %v, want 0600", st.Mode().Perm())
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "ca" {
		t.Errorf("loaded CA %+v", ca.Cert.Subject)
	}
}

func TestLoadOrIssueReuseAndReissue(t *testing.T) {
	caDir := newCA(t, "ca")
	certDir := filepath.Join(t.TempDir(), "id")
	first, err := LoadOrIssue(caDir, certDir, "agent-a", []string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := first.Cert.Leaf
	if !containsIP(leaf.IPAddresses, "10.0.0.1") || !containsIP(leaf.IPAddresses, "127.0.0.1") || !containsIP(leaf.IPAddresses, "::1") {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Errorf("DNS SANs %v", leaf.DNSNames)
	}
	usage := map[x509.ExtKeyUsage]bool{}
	for _, u := range leaf.ExtKeyUsage {
		usage[u] = true
	}
	if !usage[x509.ExtKeyUsageServerAuth] || !usage[x509.ExtKeyUsageClientAuth] {
		t.Errorf("ext key usage %v", leaf.ExtKeyUsage)
	}
	st, err := os.Stat(filepath.Join(certDir, NodeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("node.key mode %v", st.Mode().Perm())
	}

	again, err := LoadOrIssue(caDir, certDir, "agent-a", []string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Serial().Cmp(first.Serial()) != 0 {
		t.Error("valid certificate was not reused")
	}
	more, err := LoadOrIssue(caDir, certDir, "agent-a", []string{"10.0.0.1", "10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if more.Serial().Cmp(first.Serial()) == 0 || !containsIP(more.Cert.Leaf.IPAddresses, "10.0.0.2") {
		t.Error("new SAN did not cause a reissue")
	}
	otherCA := newCA(t, "other")
	moved, err := LoadOrIssue(otherCA, certDir, "agent-a", []string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if moved.Serial().Cmp(more.Serial()) == 0 {
		t.Error("certificate from another CA was reused")
	}
	loaded, err := LoadIdentity(certDir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Serial().Cmp(moved.Serial()) != 0 {
		t.Error("LoadIdentity does not return the last issued certificate")
	}
}

func TestReissueWhenNearExpiry(t *testing.T) {
	caDir := newCA(t, "ca")
	ca, err := LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	certPEM, keyPEM, err := ca.Issue("agent-a", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(certDir, NodeCertFile), certPEM, 0o644)
	os.WriteFile(filepath.Join(certDir, NodeKeyFile), keyPEM, 0o600)
	os.WriteFile(filepath.Join(certDir, RootsFile), ca.CertPEM, 0o644)
	short, err := LoadIdentity(certDir)
	if err != nil {
		t.Fatal(err)
	}
	// Issued for 1 h (+5 min backdating): more than a third left now, but not
	// 50 minutes from now.
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if !reusable(short, ca, roots, "agent-a", nil, time.Now()) {
		t.Error("fresh certificate judged not reusable")
	}
	if reusable(short, ca, roots, "agent-a", nil, time.Now().Add(50*time.Minute)) {
		t.Error("certificate with less than a third of its life left judged reusable")
	}
	if reusable(short, ca, roots, "agent-b", nil, time.Now()) {
		t.Error("certificate for another common name judged reusable")
	}
}

func TestSignCSR(t *testing.T) {
	caDir := newCA(t, "ca")
	ca, err := LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	certPEM, err := ca.SignCSR(csrPEM, "host-42", []string{"10.1.2.3"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	id, err := NewIdentity(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if id.Cert.Leaf.Subject.CommonName != "host-42" {
		t.Errorf("CN %q", id.Cert.Leaf.Subject.CommonName)
	}
	peer := issue(t, caDir, "agent-a")
	if r := handshake(t, peer.ServerTLS(), id.ClientTLS()); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("CSR-issued identity: server %v, client %v", r.serverErr, r.clientErr)
	}
	if _, err := ca.SignCSR([]byte("garbage"), "x", nil, time.Hour); err == nil {
		t.Error("garbage CSR accepted")
	}
}

func containsIP(ips []net.IP, s string) bool {
	want := net.ParseIP(s)
	for _, ip := range ips {
		if ip.Equal(want) {
			return true
		}
	}
	return false
}
