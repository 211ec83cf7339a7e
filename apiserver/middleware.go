package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// reqState is what the middlewares and the handler of one request share.
// Handlers fill target and detail for the audit record.
type reqState struct {
	start     time.Time
	source    string
	secure    bool // the request came over TLS
	principal *principal
	host      *ferry.Host
	// actor overrides the audited actor name (the username a login tried).
	actor  string
	target string
	detail string
}

type stateKey struct{}

func stateOf(ctx context.Context) *reqState {
	if st, ok := ctx.Value(stateKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

// setTarget names the audited target of the current request, e.g. "job:abc".
func setTarget(ctx context.Context, format string, args ...any) {
	stateOf(ctx).target = fmt.Sprintf(format, args...)
}

// setDetail adds a detail to the current request's audit record.
func setDetail(ctx context.Context, format string, args ...any) {
	stateOf(ctx).detail = fmt.Sprintf(format, args...)
}

// observe is the outer middleware: it creates the request state, and after
// the handler it records metrics and, for mutating calls and refusals, the
// audit record.
func (s *Server) observe(hctx huma.Context, next func(huma.Context)) {
	st := &reqState{start: time.Now(), source: sourceAddr(hctx.RemoteAddr()), secure: hctx.TLS() != nil}
	ctx := context.WithValue(hctx.Context(), stateKey{}, st)
	ctx = context.WithValue(ctx, loggerKey{}, s.log)
	hctx = huma.WithContext(hctx, ctx)
	next(hctx)

	op := hctx.Operation()
	status := hctx.Status()
	if status == 0 {
		status = http.StatusOK
	}
	s.metrics.observe(op.OperationID, status, time.Since(st.start))
	pol, _ := policyOf(op)
	mutating := op.Method != http.MethodGet && op.Method != http.MethodHead
	if (mutating && !pol.NoAudit) || pol.AuditReads || status == http.StatusForbidden {
		s.appendAudit(context.WithoutCancel(ctx), op, hctx, st, status)
	}
}

// appendAudit writes the request's audit record. A failure to audit is
// logged: the request has already been answered.
func (s *Server) appendAudit(ctx context.Context, op *huma.Operation, hctx huma.Context, st *reqState, status int) {
	if s.db == nil {
		return
	}
	rec := &ferry.AuditRecord{
		Time:       s.now(),
		Actor:      "anonymous",
		Action:     op.OperationID,
		Target:     st.target,
		SourceAddr: st.source,
		Detail:     fmt.Sprintf("status %d", status),
	}
	switch {
	case st.principal != nil:
		rec.ActorID = st.principal.User.ID
		rec.Actor = st.principal.User.Username
	case st.host != nil:
		rec.Actor = "host:" + st.host.ID
	case st.actor != "":
		rec.Actor = st.actor
	}
	if len(rec.Actor) > 128 {
		rec.Actor = rec.Actor[:128]
	}
	if rec.Target == "" {
		rec.Target = defaultTarget(op.Path, hctx)
	}
	switch {
	case status < 400:
		rec.Result = ferry.AuditSuccess
	case status == http.StatusForbidden || (status == http.StatusUnauthorized && op.OperationID != "login"):
		rec.Result = ferry.AuditDenied
	default:
		rec.Result = ferry.AuditFailure
	}
	if st.detail != "" {
		rec.Detail += ": " + st.detail
	}
	if len(rec.Detail) > 8192 {
		rec.Detail = rec.Detail[:8192]
	}
	if len(rec.Target) > 512 {
		rec.Target = rec.Target[:512]
	}
	if err := s.db.AppendAudit(ctx, rec); err != nil {
		s.log.Error("append audit record", "err", err, "action", rec.Action, "actor", rec.Actor)
	}
}

// defaultTarget derives "jobs:ID" from a path like /api/v1/jobs/{id}/….
func defaultTarget(path string, hctx huma.Context) string {
	parts := strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") && i > 0 {
			name := strings.Trim(p, "{}")
			return parts[i-1] + ":" + hctx.Param(name)
		}
	}
	if len(parts) > 0 {
		return parts[0]
	}
	return ""
}

// sourceAddr strips the port from a remote address.
func sourceAddr(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// authorize is the one access-control middleware: it enforces the policy
// each operation declared at registration. Operations without a policy are
// refused.
func (s *Server) authorize(hctx huma.Context, next func(huma.Context)) {
	op := hctx.Operation()
	pol, ok := policyOf(op)
	if !ok {
		s.refuse(hctx, problemf(http.StatusForbidden, ferry.EFORBIDDEN, "operation "+op.OperationID+" declares no access policy"))
		return
	}
	st := stateOf(hctx.Context())
	switch pol.Access {
	case AccessPublic:
		next(hctx)
		return
	case AccessHost:
		host, err := s.authenticateHost(hctx)
		if err != nil {
			s.refuse(hctx, err)
			return
		}
		st.host = host
		next(hctx)
		return
	}
	p, err := s.authenticate(hctx)
	if err != nil {
		hctx.SetHeader("WWW-Authenticate", `Bearer realm="ferry"`)
		s.refuse(hctx, err)
		return
	}
	st.principal = p
	if p.User.MustChangePassword && !pol.AllowPasswordChange {
		s.refuse(hctx, problemf(http.StatusForbidden, CodePasswordChangeRequired,
			"the password of "+p.User.Username+" must be changed before anything else: POST /api/v1/auth/password"))
		return
	}
	if pol.Access == AccessPermission && !p.Can(pol.Permission) {
		s.refuse(hctx, problemf(http.StatusForbidden, ferry.EFORBIDDEN,
			fmt.Sprintf("%s lacks permission %s needed by %s", p.User.Username, pol.Permission, op.OperationID)))
		return
	}
	next(hctx)
}

// refuse answers the request with err as a problem document.
func (s *Server) refuse(hctx huma.Context, err error) {
	p, ok := err.(*Problem)
	if !ok {
		p = newProblem(hctx, http.StatusInternalServerError, "", err).(*Problem)
	}
	p.Instance = hctx.URL().Path
	_ = huma.WriteErr(s.api, hctx, p.Status, p.Detail, p)
}

// maxScan bounds how much of a body rejectNUL reads; larger bodies are
// left to Huma's size limit.
const maxScan = 4 << 20

// rejectNUL refuses NUL characters anywhere in the query, the path or a
// JSON body's strings, and query or path text that is not UTF-8: no field
// of the API may hold such text and PostgreSQL cannot store it, so it is an
// input error rather than a database failure. (JSON strings are always
// UTF-8 once decoded.)
func (s *Server) rejectNUL(hctx huma.Context, next func(huma.Context)) {
	u := hctx.URL()
	bad := strings.ContainsRune(u.Path, 0) || !utf8.ValidString(u.Path)
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		for k, vs := range q {
			for _, v := range append(vs, k) {
				bad = bad || strings.ContainsRune(v, 0) || !utf8.ValidString(v)
			}
		}
	}
	if bad {
		s.refuse(hctx, &Problem{Status: http.StatusBadRequest, Code: ferry.EINVALID,
			Detail: "the request's path or query holds a NUL character or is not valid UTF-8"})
		return
	}
	op := hctx.Operation()
	if op.RequestBody == nil {
		next(hctx)
		return
	}
	data, err := io.ReadAll(io.LimitReader(hctx.BodyReader(), maxScan+1))
	if err != nil {
		s.refuse(hctx, &Problem{Status: http.StatusBadRequest, Code: ferry.EINVALID, Detail: "cannot read the request body"})
		return
	}
	if len(data) <= maxScan && bytes.Contains(bytes.ToLower(data), []byte(`\u0000`)) {
		var v any
		if json.Unmarshal(data, &v) == nil {
			if loc := findNUL(v, "body"); loc != "" {
				s.refuse(hctx, &Problem{Status: http.StatusUnprocessableEntity, Code: ferry.EINVALID,
					Detail: "validation failed", Errors: []*huma.ErrorDetail{{Location: loc, Message: "must not contain NUL characters"}}})
				return
			}
		}
	}
	next(bodyContext{humaContext: hctx, body: io.MultiReader(bytes.NewReader(data), hctx.BodyReader())})
}

// findNUL returns the location of the first string holding a NUL.
func findNUL(v any, loc string) string {
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) {
			return loc
		}
	case []any:
		for i, x := range v {
			if l := findNUL(x, loc+"["+strconv.Itoa(i)+"]"); l != "" {
				return l
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, 0) {
				return loc
			}
			if l := findNUL(x, loc+"."+k); l != "" {
				return l
			}
		}
	}
	return ""
}

// bodyContext is a Huma context whose body has been (partly) read already.
type bodyContext struct {
	humaContext
	body io.Reader
}

// humaContext lets bodyContext embed huma.Context without its field name
// clashing with the Context method.
type humaContext = huma.Context

func (c bodyContext) BodyReader() io.Reader { return c.body }

// Unwrap lets humago.Unwrap reach the request.
func (c bodyContext) Unwrap() huma.Context { return c.humaContext }
