package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors received from a peer in an Error message wrap the
// sentinel of their Code, so callers test them with errors.Is.
var (
	// ErrProtocol: a malformed, unexpected or out-of-order message.
	ErrProtocol = errors.New("protocol error")
	// ErrVersionMismatch: the peers speak different protocol versions.
	ErrVersionMismatch = errors.New("protocol version mismatch")
	// ErrFrameTooLarge: a frame exceeds MaxFrameSize.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrUnknownJob: an Attach named a job (or token) the agent is not
	// expecting.
	ErrUnknownJob = errors.New("unknown job or token")
	// ErrBadPath: a path is absolute, has ".." or escapes the job root.
	ErrBadPath = errors.New("path rejected")
	// ErrNotFound: a named root or file does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPermission: the operation is not permitted.
	ErrPermission = errors.New("permission denied")
	// ErrBusy: the job is already running on this agent.
	ErrBusy = errors.New("job already running")
	// ErrCanceled: the peer canceled the job.
	ErrCanceled = errors.New("canceled by peer")
	// ErrUnreadable: a source file could not be read and the error policy is
	// stop.
	ErrUnreadable = errors.New("unreadable source file")
	// ErrInternal: any other failure on the peer.
	ErrInternal = errors.New("internal error")
)

// Code is a wire error code.
type Code uint16

// The wire error codes. Values are part of the protocol: never renumber.
const (
	CodeInternal        Code = 1
	CodeProtocol        Code = 2
	CodeVersionMismatch Code = 3
	CodeFrameTooLarge   Code = 4
	CodeUnknownJob      Code = 5
	CodeBadPath         Code = 6
	CodeNotFound        Code = 7
	CodePermission      Code = 8
	CodeBusy            Code = 9
	CodeCanceled        Code = 10
	CodeUnreadable      Code = 11
)

// codeTable is the one mapping between wire codes and sentinel errors.
var codeTable = []struct {
	code Code
	err  error
}{
	{CodeInternal, ErrInternal},
	{CodeProtocol, ErrProtocol},
	{CodeVersionMismatch, ErrVersionMismatch},
	{CodeFrameTooLarge, ErrFrameTooLarge},
	{CodeUnknownJob, ErrUnknownJob},
	{CodeBadPath, ErrBadPath},
	{CodeNotFound, ErrNotFound},
	{CodePermission, ErrPermission},
	{CodeBusy, ErrBusy},
	{CodeCanceled, ErrCanceled},
	{CodeUnreadable, ErrUnreadable},
}

// CodeOf returns the wire code of err: the code of the first sentinel in its
// chain, CodeInternal if none.
func CodeOf(err error) Code {
	for _, c := range codeTable {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// SentinelOf returns the sentinel error of code (ErrInternal for unknown
// codes).
func SentinelOf(code Code) error {
	for _, c := range codeTable {
		if c.code == code {
			return c.err
		}
	}
	return ErrInternal
}

// RemoteError is an error reported by the peer. It wraps the sentinel of its
// code.
type RemoteError struct {
	Code    Code
	Message string
}

func (e *RemoteError) Error() string { return "peer: " + e.Message }

// Unwrap returns the sentinel of the code.
func (e *RemoteError) Unwrap() error { return SentinelOf(e.Code) }

// ErrorMsg turns err into an Error message for the peer.
func ErrorMsg(err error) *Error {
	return &Error{Code: CodeOf(err), Message: err.Error()}
}

// Err returns the error the message stands for, wrapping its sentinel.
func (m *Error) Err() error { return &RemoteError{Code: m.Code, Message: m.Message} }

// unexpected builds the error for a message of the wrong kind.
func unexpected(got Message, want string) error {
	if e, ok := got.(*Error); ok {
		return e.Err()
	}
	return fmt.Errorf("%w: got %s, want %s", ErrProtocol, got.Kind(), want)
}
