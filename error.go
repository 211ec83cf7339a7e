package ferry

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Application error codes. They are transport independent; the API maps
// each one to an HTTP status in one place.
const (
	ECONFLICT     = "conflict"
	EFORBIDDEN    = "forbidden"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
)

// Error is an application error: a code for machines, a message for humans
// and, for validation errors, one entry per offending field.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields,omitempty"`
}

// FieldError names one invalid field of an input and says what is wrong.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error implements the error interface. The text is meant for logs; show
// Message to users.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ferry error: code=%s message=%s", e.Code, e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, " [%s: %s]", f.Field, f.Message)
	}
	return b.String()
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" when err
// is nil and EINTERNAL for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of the first *Error in err's chain,
// "" when err is nil and a generic text for any other error, so that internal
// details never reach users.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "Internal error."
}

// ErrorFields returns the field errors of the first *Error in err's chain.
func ErrorFields(err error) []FieldError {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Fields
	}
	return nil
}

// fieldErrors collects validation failures and turns them into one EINVALID
// error.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// text adds a field error unless s is valid UTF-8 without NUL bytes and
// between min and max bytes long. Both databases would refuse or mangle
// such strings; refusing them here keeps malformed input from becoming a
// server error.
func (fe *fieldErrors) text(field, s string, min, max int) {
	switch {
	case len(s) < min && min == 1:
		fe.add(field, "is required")
	case len(s) < min:
		fe.add(field, "must be at least %d bytes", min)
	case len(s) > max:
		fe.add(field, "must be at most %d bytes", max)
	case !utf8.ValidString(s):
		fe.add(field, "must be valid UTF-8")
	case strings.ContainsRune(s, 0):
		fe.add(field, "must not contain NUL characters")
	}
}

// time adds a field error unless t is zero or within years 1970-9999, the
// range both databases store and order correctly.
func (fe *fieldErrors) time(field string, t time.Time) {
	if !ValidTime(t) {
		fe.add(field, "must be between the years 1970 and 9999")
	}
}

// ValidTime reports whether t is zero or within years 1970-9999, the range
// the store keeps and orders correctly on every engine.
func ValidTime(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	y := t.UTC().Year()
	return y >= 1970 && y <= 9999
}

// err returns nil when nothing was added, else an EINVALID *Error whose
// message summarises the fields.
func (fe fieldErrors) err(what string) error {
	if len(fe) == 0 {
		return nil
	}
	msg := fmt.Sprintf("invalid %s: %s: %s", what, fe[0].Field, fe[0].Message)
	if len(fe) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(fe)-1)
	}
	return &Error{Code: EINVALID, Message: msg, Fields: fe}
}
