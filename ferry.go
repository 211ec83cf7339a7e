// Package ferry holds Ferry's domain: the entities the control plane stores
// and serves (users, roles, hosts, jobs, audit records, alarms, reports,
// settings), their validation rules and the application error type.
//
// It imports only the standard library. Every other package is an adapter
// named after what it wraps: store (bun over SQLite or PostgreSQL), apiserver
// (Huma), workflows and activities (Temporal), agent (the host's data plane).
package ferry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"regexp"
	"strings"
)

// idEncoding is lowercase base32 without padding: IDs are safe in URLs,
// file names, Temporal workflow IDs and task queue names.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random 16-character identifier for entities whose IDs leave
// the database (jobs are Temporal workflow IDs, hosts name task queues), so
// that a restored or rebuilt database never reuses one.
func NewID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// NewSecret returns a random bearer secret (session token, API token,
// enrollment token) with the given prefix, e.g. "fst_" for sessions. Only its
// HashSecret is ever stored.
func NewSecret(prefix string) string {
	var b [32]byte
	rand.Read(b[:])
	return prefix + idEncoding.EncodeToString(b[:])
}

// HashSecret returns the hex SHA-256 of a bearer secret. Secrets carry 256
// random bits, so a fast hash is enough; the store keeps only this value.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// nameRE is the shape of user, role and other machine names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// validName reports why s is not a valid machine name, or "" when it is.
func validName(s string) string {
	switch {
	case s == "":
		return "is required"
	case strings.ToLower(s) != s:
		return "must be lowercase"
	case !nameRE.MatchString(s):
		return "must be 1-64 characters a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
	}
	return ""
}
