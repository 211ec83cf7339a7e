package apiserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"
)

// callerFor returns a token of an account allowed to call the operation,
// so that malformed input reaches validation and the handler.
func (e *testEnv) callerFor(id string) string {
	for _, who := range rbacSpec[id] {
		switch who {
		case public, agent:
			return ""
		case anyone:
			return e.token["operator"]
		default:
			return e.token[who]
		}
	}
	return ""
}

// malformedBodies are bodies no operation accepts as they are.
var malformedBodies = []string{
	`not json`, `{`, `[]`, `null`, `"string"`, `12`, `{"a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
	`{"\u0000": "\ud800"}`, strings.Repeat(" ", 10) + `{"x": 1e999}`,
}

// wrongValues replace each property of a valid-shaped body in turn.
var wrongValues = []any{
	12345, -1, 1e300, "x", strings.Repeat("é", 20000), true, nil, []any{1, "a", nil}, map[string]any{"k": "v"},
	"../../../../etc/passwd", "\x00", "a\x00b", "ÿ", strings.Repeat("/a", 5000),
}

// TestMalformedInputNever5xx sends malformed bodies, every property of
// every request schema set to values of the wrong type and size, and
// malformed query and path parameters, to every operation. Every answer is
// a 4xx problem document; nothing is a 5xx.
func TestMalformedInputNever5xx(t *testing.T) {
	e := newEnv(t)
	job := e.createJob("fuzz")
	oapi := e.srv.API().OpenAPI()
	calls := 0
	check := func(op apiOp, what string, code int, r interface {
		Header() http.Header
	}, body string) {
		calls++
		if code >= 500 {
			t.Errorf("%s %s (%s): %d %s", op.method, op.path, what, code, body)
		}
	}
	for _, op := range operations(e) {
		if slices.Contains(rbacSpec[op.id], agent) {
			continue
		}
		tok := e.callerFor(op.id)
		path := strings.ReplaceAll(concrete(op.path), "aaaaaaaaaaaaaaaa", job.ID)
		o := oapiOp(oapi, op)
		if op.id == "logout" || op.id == "watch-job-progress" {
			// logout would end the session the rest of the test uses; the
			// progress stream of a live job does not end by itself (it is
			// covered with a terminal job in TestProgressStream).
			continue
		}
		if o.RequestBody != nil {
			for _, b := range malformedBodies {
				r := e.do(op.method, path, tok, b)
				check(op, "body "+trunc(b), r.Code, r, r.Body.String())
				if r.Code < 400 {
					t.Errorf("%s accepted malformed body %q: %d", op.id, trunc(b), r.Code)
				} else {
					problemOf(t, r)
				}
			}
			schema := resolveSchema(oapi, o.RequestBody.Content["application/json"].Schema)
			for prop := range schema.Properties {
				for _, v := range wrongValues {
					raw, _ := json.Marshal(map[string]any{prop: v})
					r := e.do(op.method, path, tok, string(raw))
					check(op, "body."+prop+"="+trunc(string(raw)), r.Code, r, r.Body.String())
				}
			}
		}
		for _, p := range o.Parameters {
			for _, v := range []string{"", "-1", "abc", "99999999999999999999999", strings.Repeat("z", 5000), "%00", "2026-13-45T99:99:99Z", "\u202e", "\xff\xfe"} {
				var target string
				switch p.In {
				case "query":
					target = path + "?" + url.Values{p.Name: {v}}.Encode()
				case "path":
					target = strings.Replace(concrete(op.path), concretePart(op.path), url.PathEscape(v), 1)
					if v == "" {
						continue
					}
				default:
					continue
				}
				var body any
				if o.RequestBody != nil {
					body = "{}"
				}
				r := e.do(op.method, target, tok, body)
				check(op, p.In+"."+p.Name+"="+trunc(v), r.Code, r, r.Body.String())
			}
		}
	}
	if calls < 1000 {
		t.Errorf("only %d malformed calls made", calls)
	}
	t.Logf("%d malformed calls, none answered 5xx", calls)
}

func concretePart(path string) string {
	c := concrete(path)
	if strings.Contains(c, "999999") {
		return "999999"
	}
	return "aaaaaaaaaaaaaaaa"
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func oapiOp(o *huma.OpenAPI, op apiOp) *huma.Operation {
	item := o.Paths[op.path]
	switch op.method {
	case http.MethodGet:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodPatch:
		return item.Patch
	}
	return item.Delete
}

func resolveSchema(o *huma.OpenAPI, s *huma.Schema) *huma.Schema {
	if s != nil && s.Ref != "" {
		return o.Components.Schemas.SchemaFromRef(s.Ref)
	}
	return s
}

// TestFieldLevelProblems checks that domain validation reaches the client
// as field-level details.
func TestFieldLevelProblems(t *testing.T) {
	e := newEnv(t)
	job := e.createJob("fields")
	cases := []struct {
		name     string
		body     map[string]any
		location string
	}{
		{"relative target", map[string]any{"targetPath": "srv/data"}, "body.targetPath"},
		{"unclean source", map[string]any{"sourcePaths": []string{"/srv/../etc"}}, "body.sourcePaths[0]"},
		{"unknown host", map[string]any{"targetHostId": "bbbbbbbbbbbbbbbb"}, "body.targetHostId"},
		{"bad enum", map[string]any{"compression": "max"}, "body.compression"},
		{"orphan move inside target", map[string]any{"orphanPolicy": "move:/srv/data/old"}, "body.orphanPolicy"},
		{"missing command", map[string]any{"cutover": map[string]any{"postCutoverActions": []map[string]any{{"name": "x"}}}}, "body.cutover.postCutoverActions[0].command"},
	}
	for _, c := range cases {
		body := map[string]any{"name": "j", "sourceHostId": job.SourceHostID, "sourcePaths": []string{"/srv/data"},
			"targetHostId": job.TargetHostID, "targetPath": "/srv/data"}
		for k, v := range c.body {
			body[k] = v
		}
		r := e.expect(e.do("POST", "/api/v1/jobs", e.token["admin"], body), http.StatusUnprocessableEntity)
		p := problemOf(t, r)
		if !slices.ContainsFunc(p.Errors, func(d *huma.ErrorDetail) bool {
			return d.Location == c.location || strings.HasPrefix(d.Message, "expected required property") && strings.HasPrefix(c.location, d.Location+".")
		}) {
			t.Errorf("%s: no error at %s in %+v", c.name, c.location, p)
		}
	}
}
