// Package pki is the agents' small certificate authority: it creates a CA,
// issues leaf certificates usable as both TLS server and client, and builds
// the mutually authenticated TLS 1.3 configurations of the data channel.
//
// Keys are ECDSA P-256 (PKCS#8 PEM). Every private key file is written with
// mode 0600 and never overwritten in place: files are written to a temporary
// name and renamed.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside a CA directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// Validity periods.
const (
	// CAValidity is how long a CA created by InitCA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is the lifetime of the certificates LoadOrIssue issues.
	LeafValidity = 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that peers whose clocks lag a little
	// accept a freshly issued certificate.
	clockSkew = 5 * time.Minute
)

// ErrExists is returned by InitCA when the directory already holds a CA.
var ErrExists = errors.New("pki: CA already exists")

// CA is a loaded certificate authority able to issue leaf certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// InitCA creates a new CA named name in dir (created 0700 if missing): a
// self-signed certificate ca.crt and its ECDSA P-256 key ca.key (0600).
// Returns an error wrapping ErrExists, and changes nothing, if either file
// already exists.
func InitCA(dir, name string) error {
	if name == "" {
		return errors.New("pki: CA name must not be empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: create CA directory: %w", err)
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%w: %s", ErrExists, filepath.Join(dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: check %s: %w", f, err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Ferry"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: sign CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	// Key first, exclusively: a concurrent InitCA loses here instead of
	// leaving a certificate that does not match the key.
	if err := writeExclusive(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeExclusive(filepath.Join(dir, CACertFile), certPEM, 0o644); err != nil {
		return err
	}
	return nil
}

// LoadCA reads ca.crt and ca.key from dir. Returns an error if either is
// missing or unparsable, if the certificate is not a CA, or if the key does
// not belong to the certificate.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", filepath.Join(dir, CACertFile), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", filepath.Join(dir, CACertFile))
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("pki: %s does not match %s", CAKeyFile, CACertFile)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

// Issue creates a new key pair and a leaf certificate for commonName signed
// by the CA, valid for ttl, usable for both TLS server and client
// authentication. Each entry of sans becomes an IP SAN if it parses as an IP
// address and a DNS SAN otherwise; 127.0.0.1, ::1 and localhost are always
// added. Returns PEM-encoded certificate and PKCS#8 key.
func (ca *CA) Issue(commonName string, sans []string, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	der, err := ca.sign(commonName, sans, ttl, &key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// SignCSR issues a leaf certificate (server and client use) for the public
// key of a PEM-encoded PKCS#10 request, so an enrolling agent never sends its
// private key. The common name is taken from commonName, not from the request;
// SANs are handled as in Issue. Returns an error if the request's signature
// does not verify.
func (ca *CA) SignCSR(csrPEM []byte, commonName string, sans []string, ttl time.Duration) ([]byte, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("pki: no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: certificate request signature: %w", err)
	}
	der, err := ca.sign(commonName, sans, ttl, csr.PublicKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func (ca *CA) sign(commonName string, sans []string, ttl time.Duration, pub crypto.PublicKey) ([]byte, error) {
	if commonName == "" {
		return nil, errors.New("pki: common name must not be empty")
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("pki: certificate lifetime must be positive, got %v", ttl)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(ttl)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: commonName, Organization: []string{"Ferry"}},
		NotBefore:      now.Add(-clockSkew),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		AuthorityKeyId: ca.Cert.SubjectKeyId,
	}
	ips, names := splitSANs(sans)
	tmpl.IPAddresses, tmpl.DNSNames = ips, names
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate for %q: %w", commonName, err)
	}
	return der, nil
}

// splitSANs returns the IP and DNS SANs for sans plus the loopback names,
// without duplicates, in a stable order.
func splitSANs(sans []string) ([]net.IP, []string) {
	var ips []net.IP
	var names []string
	seen := map[string]bool{}
	for _, s := range append(append([]string(nil), sans...), "127.0.0.1", "::1", "localhost") {
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			if !seen["ip:"+ip.String()] {
				seen["ip:"+ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if !seen["dns:"+s] {
			seen["dns:"+s] = true
			names = append(names, s)
		}
	}
	return ips, names
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: random serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

func keyID(pub *ecdsa.PublicKey) []byte {
	b, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(b)
	return sum[:20]
}
