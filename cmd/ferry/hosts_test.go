package main

import (
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnrollTokenPrintsCommandAndCA: enroll-token prints the token, the
// exact agent command, the CA certificate and its SHA-256 fingerprint
// (computed independently here from the server's CA), and --ca-out writes
// the certificate the command names.
func TestEnrollTokenPrintsCommandAndCA(t *testing.T) {
	e := newCLIEnv(t)
	e.mustRun(e.creds["admin"]+"\nAnother-Passw0rd-9\n", "login", "--server", e.url, "-u", "admin", "--password-stdin")
	caDER := func(pemData []byte) []byte {
		blk, _ := pem.Decode(pemData)
		if blk == nil {
			t.Fatalf("no PEM certificate in %q", pemData)
		}
		return blk.Bytes
	}
	// The server's CA, read from its directory, not through the API.
	serverCA, err := os.ReadFile(filepath.Join(filepath.Dir(os.Getenv("XDG_CONFIG_HOME")), "ca", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(caDER(serverCA))
	var parts []string
	for _, b := range sum {
		parts = append(parts, fmt.Sprintf("%02X", b))
	}
	wantFP := strings.Join(parts, ":")

	out := e.mustRun("", "hosts", "enroll-token")
	// The token is the first non-empty line after the heading.
	_, rest, _ := strings.Cut(out, "usable once):")
	tok := strings.Fields(rest)[0]
	want := "ferry agent --enroll " + e.url + " --token " + tok + " --ca-cert ferry-ca.crt --data-dir /var/lib/ferry"
	if tok == "" || !strings.Contains(out, want) || !strings.Contains(out, "CA SHA-256 fingerprint: "+wantFP) ||
		!strings.Contains(out, strings.TrimSpace(string(serverCA))) {
		t.Fatalf("enroll-token output lacks the token, command %q, fingerprint %s or certificate:\n%s", want, wantFP, out)
	}

	caFile := filepath.Join(t.TempDir(), "ca.crt")
	var got struct {
		Token, CASha256, CAFile, AgentCommand string
	}
	json.Unmarshal([]byte(e.mustRun("", "hosts", "enroll-token", "--ca-out", caFile, "--json")), &got)
	written, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(caDER(written)) != string(caDER(serverCA)) || got.CASha256 != wantFP || got.CAFile != caFile ||
		got.AgentCommand != "ferry agent --enroll "+e.url+" --token "+got.Token+" --ca-cert "+caFile+" --data-dir /var/lib/ferry" {
		t.Errorf("--ca-out --json: %+v", got)
	}
}
