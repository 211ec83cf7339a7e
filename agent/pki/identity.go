package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names inside an identity (certificate) directory.
const (
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
	// RootsFile is the CA certificate (bundle) trusted for peers; it is
	// copied next to the node certificate so LoadIdentity needs no CA key.
	RootsFile = "ca.crt"
)

// Identity is the certificate and trust roots of one agent (or CLI) on the
// data channel.
//
// Set the optional fields before calling ServerTLS or ClientTLS: the configs
// capture their values when built. IsRevoked itself may consult live state.
type Identity struct {
	// Cert is the process's own certificate chain and key; Cert.Leaf is set.
	Cert tls.Certificate
	// Roots holds the CA certificates peers must chain to.
	Roots *x509.CertPool

	// IsRevoked, if set, is called with the serial number of every peer leaf
	// certificate after its chain has verified; returning true refuses the
	// handshake (both directions).
	IsRevoked func(serial *big.Int) bool
	// VerifyPeerName makes ClientTLS also require that the server
	// certificate carries a SAN matching the dialed host name or IP
	// (tls.Config.ServerName). Off by default: agents are addressed by IPs
	// that may be NATed or renumbered, and a certificate from the job's CA is
	// what authenticates a peer.
	VerifyPeerName bool
}

// LoadOrIssue returns this process's identity, issuing it when needed from
// the CA whose certificate and key are in caDir. The certificate and key are
// kept in certDir (created 0700; key 0600) and reused on later calls while
// they are signed by that same CA, have the same common name, cover every
// requested SAN and have at least a third of their lifetime left; otherwise
// a new certificate (LeafValidity) is issued and replaces them. sans are IPs
// or DNS names; 127.0.0.1, ::1 and localhost are always included.
// Returns an error if the CA cannot be loaded or the files cannot be written.
func LoadOrIssue(caDir, certDir, commonName string, sans []string) (*Identity, error) {
	ca, err := LoadCA(caDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create certificate directory: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	if id, err := LoadIdentity(certDir); err == nil && reusable(id, ca, roots, commonName, sans, time.Now()) {
		return id, nil
	}

	certPEM, keyPEM, err := ca.Issue(commonName, sans, LeafValidity)
	if err != nil {
		return nil, err
	}
	if old, err := os.ReadFile(filepath.Join(certDir, RootsFile)); err != nil || !bytes.Equal(old, ca.CertPEM) {
		if err := writeAtomic(filepath.Join(certDir, RootsFile), ca.CertPEM, 0o644); err != nil {
			return nil, err
		}
	}
	if err := writeAtomic(filepath.Join(certDir, NodeKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(certDir, NodeCertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return NewIdentity(certPEM, keyPEM, ca.CertPEM)
}

// reusable reports whether id is a still-good certificate from ca for
// commonName covering sans.
func reusable(id *Identity, ca *CA, roots *x509.CertPool, commonName string, sans []string, now time.Time) bool {
	leaf := id.Cert.Leaf
	if leaf.Subject.CommonName != commonName {
		return false
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return false
	}
	if !bytes.Equal(leaf.RawIssuer, ca.Cert.RawSubject) {
		return false
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	if leaf.NotAfter.Sub(now) < lifetime/3 {
		return false
	}
	ips, names := splitSANs(sans)
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, func(have net.IP) bool { return have.Equal(ip) }) {
			return false
		}
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

// LoadIdentity reads node.crt, node.key and ca.crt from certDir (as written
// by LoadOrIssue or by enrollment). It needs no CA key.
func LoadIdentity(certDir string) (*Identity, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(certDir, name))
		if err != nil {
			return nil, fmt.Errorf("pki: read identity: %w", err)
		}
		return b, nil
	}
	certPEM, err := read(NodeCertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(NodeKeyFile)
	if err != nil {
		return nil, err
	}
	rootsPEM, err := read(RootsFile)
	if err != nil {
		return nil, err
	}
	return NewIdentity(certPEM, keyPEM, rootsPEM)
}

// NewIdentity builds an Identity from PEM data: the leaf certificate
// (optionally followed by intermediates), its private key, and the trusted
// CA certificates. Returns an error if any part does not parse or the key
// does not match the certificate.
func NewIdentity(certPEM, keyPEM, rootsPEM []byte) (*Identity, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: load key pair: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("pki: parse certificate: %w", err)
		}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootsPEM) {
		return nil, errors.New("pki: no CA certificate in roots")
	}
	return &Identity{Cert: cert, Roots: roots}, nil
}

// Serial returns the serial number of the identity's own certificate, the
// value a revocation list names.
func (id *Identity) Serial() *big.Int { return id.Cert.Leaf.SerialNumber }
