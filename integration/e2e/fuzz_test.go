package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// hostile are values for path and query parameters: traversal, encodings,
// oversized, control characters, numbers out of range.
var hostile = []string{
	"../../../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f%2e%2e%2f", "/etc/shadow", "..\\..\\windows",
	strings.Repeat("a", 5000), "%00", "\x01\x02", "-1", "0", "99999999999999999999999", "1e309", "NaN",
	"' OR 1=1 --", "<script>alert(1)</script>", "%ff%fe", "🙂", "",
}

// wrongTypes are JSON values of every kind, to put where another is expected.
var wrongTypes = []any{nil, true, -1, 1e308, "", strings.Repeat("x", 70000), []any{1, "a"}, map[string]any{"$ref": "#"}, "../../etc/passwd"}

// fuzzAPI sends malformed requests to every operation of the server's
// OpenAPI document with each of the tokens ("" for none, a wrong one, real
// ones) and fails the test on any 5xx or a dead server. It returns how many
// requests it sent.
func fuzzAPI(t *testing.T, base string, tokens []string, rng *rand.Rand) int {
	t.Helper()
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			RequestBody *struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	sent := 0
	send := func(method, path, token string, body []byte, ctype string) {
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			return // a URL Go itself refuses to build never reaches the server
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		sent++
		resp, err := hc.Do(req)
		if err != nil {
			if strings.Contains(err.Error(), "Client.Timeout") && strings.HasSuffix(path, "/progress") {
				return // an event stream that legitimately stays open
			}
			t.Fatalf("%s %s: the server did not answer: %v", method, path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s (body %.200q): %d %s", method, path, body, resp.StatusCode, b)
		}
	}
	for _, p := range paths {
		for method, op := range doc.Paths[p] {
			method = strings.ToUpper(method)
			var props []string
			if op.RequestBody != nil {
				for _, c := range op.RequestBody.Content {
					name := strings.TrimPrefix(c.Schema.Ref, "#/components/schemas/")
					for prop := range doc.Components.Schemas[name].Properties {
						props = append(props, prop)
					}
				}
				sort.Strings(props)
			}
			for _, tok := range tokens {
				for i := 0; i < 2; i++ {
					// Path parameters: hostile values.
					path := p
					q := url.Values{}
					for _, prm := range op.Parameters {
						v := hostile[rng.IntN(len(hostile))]
						switch prm.In {
						case "path":
							path = strings.ReplaceAll(path, "{"+prm.Name+"}", url.PathEscape(v))
						case "query":
							q.Set(prm.Name, v)
						}
					}
					if len(q) > 0 {
						path += "?" + q.Encode()
					}
					if strings.HasSuffix(p, "/progress") && !strings.Contains(path, "{") {
						send(method, path, tok, nil, "")
						continue
					}
					// Bodies: malformed JSON, wrong top-level types, each
					// property with a wrong type, an oversized body.
					bodies := [][]byte{nil, []byte(`{"a":`), []byte(`[]`), []byte(`"x"`), []byte(`{}`), bytes.Repeat([]byte(`{"a":[`), 5000)}
					for _, prop := range props {
						b, _ := json.Marshal(map[string]any{prop: wrongTypes[rng.IntN(len(wrongTypes))]})
						bodies = append(bodies, b)
					}
					if i == 0 {
						bodies = append(bodies, append([]byte(`{"x":"`), append(bytes.Repeat([]byte("A"), 3<<20), []byte(`"}`)...)...))
					}
					for _, b := range bodies {
						send(method, path, tok, b, "application/json")
					}
					send(method, path, tok, []byte("name=x"), "application/x-www-form-urlencoded")
				}
			}
		}
	}
	// Still alive and well.
	r, err := hc.Get(base + "/healthz")
	if err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("the server is unhealthy after the fuzz pass: %v", err)
	}
	r.Body.Close()
	return sent
}
