package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Problem codes beyond the ferry error codes, for conditions a client must
// tell apart from a plain refusal.
const (
	// CodePasswordChangeRequired: the account must change its password
	// before any call other than change-password and logout.
	CodePasswordChangeRequired = "password_change_required"
	// CodeLocked: too many failed logins; the account is locked for a while.
	CodeLocked = "account_locked"
)

// Problem is an RFC 9457 problem document. Errors lists the offending fields
// of an invalid input ("body.sourcePaths[0]", "query.limit", …); Code is the
// machine-readable ferry error code.
type Problem struct {
	Type     string              `json:"type,omitempty" doc:"A URI reference identifying the problem type" example:"about:blank"`
	Title    string              `json:"title" doc:"Short summary of the problem type" example:"Unprocessable Entity"`
	Status   int                 `json:"status" doc:"HTTP status code" example:"422"`
	Detail   string              `json:"detail,omitempty" doc:"Explanation of this occurrence" example:"invalid job: targetPath: must be an absolute path"`
	Instance string              `json:"instance,omitempty" doc:"The request path"`
	Code     string              `json:"code,omitempty" doc:"Ferry error code" enum:"invalid,not_found,conflict,unauthorized,forbidden,internal,password_change_required,account_locked"`
	Errors   []*huma.ErrorDetail `json:"errors,omitempty" doc:"One entry per invalid field"`
}

// Error implements error.
func (p *Problem) Error() string { return p.Detail }

// GetStatus implements huma.StatusError.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes JSON problems application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	if ct == "application/cbor" {
		return "application/problem+cbor"
	}
	return ct
}

// statusOf maps a ferry error code to its HTTP status. It is the only place
// that does.
func statusOf(code string) int {
	switch code {
	case ferry.EINVALID:
		return http.StatusUnprocessableEntity
	case ferry.ENOTFOUND:
		return http.StatusNotFound
	case ferry.ECONFLICT:
		return http.StatusConflict
	case ferry.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case ferry.EFORBIDDEN:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// codeOf maps an HTTP status back to a ferry code, for errors Huma raises
// itself (validation, malformed bodies).
func codeOf(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return ferry.EUNAUTHORIZED
	case status == http.StatusForbidden:
		return ferry.EFORBIDDEN
	case status == http.StatusNotFound:
		return ferry.ENOTFOUND
	case status == http.StatusConflict:
		return ferry.ECONFLICT
	case status >= 500:
		return ferry.EINTERNAL
	case status >= 400:
		return ferry.EINVALID
	}
	return ""
}

// newProblem is installed as huma.NewErrorWithContext: every error response
// of the API, Huma's own (validation, body parsing) and the handlers', goes
// through it. A handler returning a *ferry.Error (or one wrapped) gets the
// status of its code and one detail per field; any other error is an
// internal error whose text is logged, never shown.
func newProblem(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
	p := &Problem{Status: status, Detail: msg}
	for _, err := range errs {
		if err == nil {
			continue
		}
		if fe, ok := errors.AsType[*ferry.Error](err); ok {
			p.Status = statusOf(fe.Code)
			p.Code = fe.Code
			p.Detail = fe.Message
			for _, f := range fe.Fields {
				p.Errors = append(p.Errors, &huma.ErrorDetail{Location: "body." + f.Field, Message: f.Message})
			}
			continue
		}
		if pe, ok := errors.AsType[*Problem](err); ok {
			return pe
		}
		if d, ok := err.(huma.ErrorDetailer); ok {
			p.Errors = append(p.Errors, d.ErrorDetail())
			continue
		}
		if status >= 500 {
			// Internal: log the cause, show a generic text.
			logFrom(ctxOf(hctx)).Error("internal error", "err", err, "operation", opID(hctx))
			continue
		}
		p.Errors = append(p.Errors, &huma.ErrorDetail{Message: err.Error()})
	}
	if p.Code == "" {
		p.Code = codeOf(p.Status)
	}
	if p.Status >= 500 && p.Detail == "unexpected error occurred" {
		p.Detail = "Internal error."
	}
	p.Title = http.StatusText(p.Status)
	if hctx != nil {
		u := hctx.URL()
		p.Instance = u.Path
	}
	return p
}

// problemf returns a problem with a specific code, for refusals that are not
// ferry errors (must-change-password, lockout).
func problemf(status int, code, detail string) *Problem {
	return &Problem{Status: status, Title: http.StatusText(status), Code: code, Detail: detail}
}

func ctxOf(hctx huma.Context) context.Context {
	if hctx == nil {
		return context.Background()
	}
	return hctx.Context()
}

func opID(hctx huma.Context) string {
	if hctx == nil || hctx.Operation() == nil {
		return ""
	}
	return hctx.Operation().OperationID
}

type loggerKey struct{}

// logFrom returns the request's logger, or the default one.
func logFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// invalidField returns an EINVALID error naming one field.
func invalidField(field, format string, args ...any) error {
	e := ferry.Errorf(ferry.EINVALID, format, args...)
	e.Fields = []ferry.FieldError{{Field: field, Message: e.Message}}
	e.Message = "invalid " + strings.SplitN(field, ".", 2)[0] + ": " + e.Message
	return e
}
