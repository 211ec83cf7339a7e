package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// CACertOutput is the control plane's CA certificate in PEM.
type CACertOutput struct {
	ContentType string `header:"Content-Type"`
	// Fingerprint is the SHA-256 of the certificate's DER bytes, in hex.
	Fingerprint string `header:"X-Ferry-CA-SHA256" doc:"SHA-256 of the certificate (DER), hex; compare it out of band before trusting the file"`
	Body        []byte
}

func (s *Server) registerCACert() {
	register(s, huma.Operation{OperationID: "get-ca-certificate", Method: http.MethodGet, Path: "/api/v1/ca.crt", Tags: []string{"Agents"},
		Summary: "The control plane's CA certificate (PEM), which agents pass to ferry agent --ca-cert",
		Description: "Public: the certificate is no secret. Fetched over an untrusted channel it proves nothing by itself: " +
			"compare its SHA-256 fingerprint with the one `ferry hosts enroll-token` prints.",
		Errors: []int{http.StatusNotFound},
		Responses: map[string]*huma.Response{"200": {Description: "PEM certificate",
			Content: map[string]*huma.MediaType{"application/x-pem-file": {Schema: &huma.Schema{Type: "string"}}}}},
	}, policy{Access: AccessPublic}, s.caCert)
}

func (s *Server) caCert(ctx context.Context, _ *struct{}) (*CACertOutput, error) {
	if s.cfg.CA == nil {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "this server has no CA: agents enroll against a control plane with a CA")
	}
	return &CACertOutput{ContentType: "application/x-pem-file", Fingerprint: CAFingerprint(s.cfg.CA.Cert.Raw), Body: s.cfg.CA.CertPEM}, nil
}

// CAFingerprint returns the SHA-256 of a certificate's DER bytes as
// colon-separated upper-case hex (the form openssl x509 -fingerprint
// -sha256 prints).
func CAFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
