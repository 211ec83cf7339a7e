package ferry

import (
	"encoding/json"
	"regexp"
	"time"
	"unicode/utf8"
)

// Setting is one named, JSON-valued piece of runtime configuration kept in
// the database (SMTP relay, retention, backup schedule, …).
type Setting struct {
	Key         string          `bun:"key,pk" json:"key"`
	Value       json.RawMessage `bun:"value" json:"value"`
	UpdatedByID int64           `bun:"updated_by_id,nullzero" json:"updatedById,omitzero"`
	UpdatedAt   time.Time       `bun:"updated_at" json:"updatedAt"`
}

var settingKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,127}$`)

// Validate returns EINVALID with one FieldError per invalid field.
func (s *Setting) Validate() error {
	var fe fieldErrors
	if !settingKeyRE.MatchString(s.Key) {
		fe.add("key", "must be 1-128 characters a-z, 0-9, '.', '_' or '-', starting with a letter")
	}
	if len(s.Value) == 0 || !json.Valid(s.Value) || !utf8.Valid(s.Value) {
		fe.add("value", "must be a JSON document")
	}
	return fe.err("setting")
}
