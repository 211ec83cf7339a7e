package ferry

import "time"

// Session is a signed-in browser or CLI session. The bearer secret is handed
// to the client once; only its HashSecret is stored.
type Session struct {
	ID         int64     `bun:"id,pk,autoincrement" json:"id"`
	UserID     int64     `bun:"user_id" json:"userId"`
	TokenHash  string    `bun:"token_hash,nullzero" json:"-"`
	SourceAddr string    `bun:"source_addr" json:"sourceAddr"`
	UserAgent  string    `bun:"user_agent" json:"userAgent"`
	CreatedAt  time.Time `bun:"created_at" json:"createdAt"`
	ExpiresAt  time.Time `bun:"expires_at" json:"expiresAt"`
	LastSeenAt time.Time `bun:"last_seen_at" json:"lastSeenAt"`

	// User is filled by FindSessionByHash.
	User *User `bun:"rel:belongs-to,join:user_id=id" json:"-"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (s *Session) Validate() error {
	var fe fieldErrors
	if s.UserID <= 0 {
		fe.add("userId", "is required")
	}
	if len(s.TokenHash) != 64 {
		fe.add("tokenHash", "must be a hex SHA-256")
	}
	if s.ExpiresAt.IsZero() {
		fe.add("expiresAt", "is required")
	}
	fe.time("expiresAt", s.ExpiresAt)
	fe.text("userAgent", s.UserAgent, 0, 512)
	fe.text("sourceAddr", s.SourceAddr, 0, 256)
	return fe.err("session")
}

// APIToken is a personal, revocable token for automation. The secret is shown
// once at creation; only its HashSecret is stored.
type APIToken struct {
	ID     int64  `bun:"id,pk,autoincrement" json:"id"`
	UserID int64  `bun:"user_id" json:"userId"`
	Name   string `bun:"name,nullzero" json:"name"`
	// Prefix is the first characters of the secret, for telling tokens apart.
	Prefix     string    `bun:"prefix" json:"prefix"`
	TokenHash  string    `bun:"token_hash,nullzero" json:"-"`
	CreatedAt  time.Time `bun:"created_at" json:"createdAt"`
	ExpiresAt  time.Time `bun:"expires_at,nullzero" json:"expiresAt,omitzero"` // zero: never
	LastUsedAt time.Time `bun:"last_used_at,nullzero" json:"lastUsedAt,omitzero"`
	RevokedAt  time.Time `bun:"revoked_at,nullzero" json:"revokedAt,omitzero"`

	// User is filled by FindAPITokenByHash.
	User *User `bun:"rel:belongs-to,join:user_id=id" json:"-"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (t *APIToken) Validate() error {
	var fe fieldErrors
	if t.UserID <= 0 {
		fe.add("userId", "is required")
	}
	fe.text("name", t.Name, 1, 128)
	if len(t.TokenHash) != 64 {
		fe.add("tokenHash", "must be a hex SHA-256")
	}
	fe.text("prefix", t.Prefix, 0, 16)
	fe.time("expiresAt", t.ExpiresAt)
	return fe.err("API token")
}

// Active reports whether the token may be used at now.
func (t *APIToken) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}
