package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
)

// ErrRevoked is returned (wrapped) by a handshake whose peer certificate the
// Identity's IsRevoked hook reports as revoked.
var ErrRevoked = errors.New("pki: peer certificate revoked")

// ServerTLS returns the listener side configuration: TLS 1.3 only, the
// identity's certificate, and a client certificate that must chain to Roots
// (and not be revoked) — a client without one is refused.
func (id *Identity) ServerTLS() *tls.Config {
	isRevoked := id.IsRevoked
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    id.Roots,
	}
	if isRevoked != nil {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return checkRevoked(cs, isRevoked)
		}
	}
	return cfg
}

// ClientTLS returns the dialer side configuration: TLS 1.3 only, presenting
// the identity's certificate, and verifying that the server's certificate
// chains to Roots with server-auth usage and is not revoked.
//
// The host name is not checked unless VerifyPeerName is set: agents are
// dialed by IP address (possibly NATed), and possession of a certificate
// from the CA is what authenticates a peer. Standard verification is then
// replaced by an equivalent chain check in VerifyConnection
// (InsecureSkipVerify only turns off the built-in check). With
// VerifyPeerName, standard verification runs and the caller must set
// ServerName (tls.Dial does so from the address).
func (id *Identity) ClientTLS() *tls.Config {
	roots, isRevoked := id.Roots, id.IsRevoked
	cert := id.Cert
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		// Always present the certificate, even when the server's list of
		// acceptable CAs does not name ours: the server then refuses with a
		// clear "bad certificate" instead of "certificate required".
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		},
		RootCAs: roots,
	}
	if id.VerifyPeerName {
		// Standard verification: chain to RootCAs and a SAN matching
		// ServerName (an IP SAN when an IP was dialed).
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return checkRevoked(cs, isRevoked)
		}
		return cfg
	}
	cfg.InsecureSkipVerify = true //nolint:gosec // replaced by the chain check below.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("pki: server presented no certificate")
		}
		opts := x509.VerifyOptions{
			Roots:         roots,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("pki: verify server certificate: %w", err)
		}
		return checkRevoked(cs, isRevoked)
	}
	return cfg
}

func checkRevoked(cs tls.ConnectionState, isRevoked func(*big.Int) bool) error {
	if isRevoked == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	if isRevoked(leaf.SerialNumber) {
		return fmt.Errorf("%w: %q serial %x", ErrRevoked, leaf.Subject.CommonName, leaf.SerialNumber)
	}
	return nil
}
