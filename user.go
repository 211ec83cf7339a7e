package ferry

import (
	"strings"
	"time"
	"unicode/utf8"
)

// User is a person or automation account that signs in to the control
// plane. Rights come only from the user's roles.
type User struct {
	ID                 int64     `bun:"id,pk,autoincrement" json:"id"`
	Username           string    `bun:"username,nullzero" json:"username"`
	DisplayName        string    `bun:"display_name" json:"displayName"`
	Email              string    `bun:"email" json:"email"`
	PasswordHash       string    `bun:"password_hash,nullzero" json:"-"`
	MustChangePassword bool      `bun:"must_change_password" json:"mustChangePassword"`
	Disabled           bool      `bun:"disabled" json:"disabled"`
	Builtin            bool      `bun:"builtin" json:"builtin"`
	FailedLogins       int       `bun:"failed_logins" json:"failedLogins"`
	LockedUntil        time.Time `bun:"locked_until,nullzero" json:"lockedUntil,omitzero"`
	LastLoginAt        time.Time `bun:"last_login_at,nullzero" json:"lastLoginAt,omitzero"`
	PasswordChangedAt  time.Time `bun:"password_changed_at,nullzero" json:"passwordChangedAt,omitzero"`
	CreatedAt          time.Time `bun:"created_at" json:"createdAt"`
	UpdatedAt          time.Time `bun:"updated_at" json:"updatedAt"`

	// Roles is filled by the store's Find methods; it is ignored on writes
	// (use AssignRole and UnassignRole).
	Roles []*Role `bun:"m2m:user_roles,join:User=Role" json:"roles,omitempty"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (u *User) Validate() error {
	var fe fieldErrors
	if msg := validName(u.Username); msg != "" {
		fe.add("username", "%s", msg)
	}
	fe.text("displayName", u.DisplayName, 0, 128)
	if u.Email != "" && (len(u.Email) > 254 || !utf8.ValidString(u.Email) || !strings.Contains(u.Email, "@") || strings.ContainsAny(u.Email, " \t\r\n<>\x00")) {
		fe.add("email", "must be an e-mail address")
	}
	fe.text("password", u.PasswordHash, 1, 1024)
	if u.FailedLogins < 0 {
		fe.add("failedLogins", "must not be negative")
	}
	return fe.err("user")
}

// Locked reports whether the account is locked out at now.
func (u *User) Locked(now time.Time) bool {
	return !u.LockedUntil.IsZero() && now.Before(u.LockedUntil)
}

// HasRole reports whether Roles (as loaded) contains the named role.
func (u *User) HasRole(name string) bool {
	for _, r := range u.Roles {
		if r.Name == name {
			return true
		}
	}
	return false
}

// UserFilter selects users in ListUsers. Zero fields match everything.
type UserFilter struct {
	Username string // exact match
	Role     string // users holding this role
	Query    string // substring of username, display name or e-mail
	Offset   int
	Limit    int // 0 means DefaultPageSize; capped at MaxPageSize
}

// Page sizes for every List method.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)
