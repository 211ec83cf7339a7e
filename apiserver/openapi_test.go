package apiserver

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

var update = flag.Bool("update", false, "rewrite openapi.json from the registered operations")

// generatedOpenAPI renders the document exactly as committed.
func generatedOpenAPI(t *testing.T) []byte {
	t.Helper()
	s, err := New(Config{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.API().OpenAPI().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// TestOpenAPIUpToDate fails when the committed openapi.json differs from
// what the code registers. Refresh it with `go generate ./apiserver`.
func TestOpenAPIUpToDate(t *testing.T) {
	got := generatedOpenAPI(t)
	if *update {
		if err := os.WriteFile("openapi.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatalf("%v: run go generate ./apiserver", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("apiserver/openapi.json is out of date: run go generate ./apiserver and commit the result")
	}
}

var kebab = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

func TestOpenAPIShape(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(generatedOpenAPI(t), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("OpenAPI version %q, want 3.1", doc.OpenAPI)
	}
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		if path != "/healthz" && path != "/readyz" && !strings.HasPrefix(path, "/api/v1/") {
			t.Errorf("operation path %s is outside /api/v1", path)
		}
		for method, raw := range item {
			var op struct {
				OperationID string `json:"operationId"`
			}
			_ = json.Unmarshal(raw, &op)
			if !kebab.MatchString(op.OperationID) || ids[op.OperationID] {
				t.Errorf("%s %s: operation ID %q is not unique kebab-case", method, path, op.OperationID)
			}
			ids[op.OperationID] = true
		}
	}
}

// TestServedDocuments fetches what a user would: both OpenAPI documents,
// the offline docs page and its script, and the metrics.
func TestServedDocuments(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("/openapi.json"); resp.StatusCode != 200 || !strings.Contains(body, `"create-job"`) {
		t.Errorf("/openapi.json: %d", resp.StatusCode)
	}
	if resp, body := get("/openapi.yaml"); resp.StatusCode != 200 || !strings.Contains(body, "openapi: 3.1") {
		t.Errorf("/openapi.yaml: %d %.80s", resp.StatusCode, body)
	}
	resp, page := get("/docs")
	if resp.StatusCode != 200 || !strings.Contains(page, "<title>Ferry API reference</title>") {
		t.Fatalf("/docs: %d", resp.StatusCode)
	}
	// Offline: nothing is loaded from another origin.
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(page); m != "" {
		t.Errorf("/docs loads from another origin: %s", m)
	}
	if resp, js := get("/docs/docs.js"); resp.StatusCode != 200 || !strings.Contains(js, `fetch("/openapi.json")`) || strings.Contains(js, "http") && regexp.MustCompile(`https?://`).MatchString(js) {
		t.Errorf("/docs/docs.js: %d", resp.StatusCode)
	}
	if resp, body := get("/healthz"); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}
	get("/api/v1/jobs")
	_, metrics := get("/metrics")
	for _, want := range []string{`ferry_api_requests_total{operation="list-jobs",status="401"} 1`, `ferry_api_request_duration_seconds_count{operation="list-jobs"} 1`,
		`ferry_api_requests_total{operation="login",status="200"} 4`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
