package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/alexedwards/argon2id"
	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Password policy.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
	// MinPasswordClasses of lowercase, uppercase, digits and symbols.
	MinPasswordClasses = 3
)

// DefaultPasswordHashing returns the argon2id parameters of new password
// hashes: 64 MiB, 2 passes (RFC 9106's second recommendation with less
// memory, for a control plane that may run beside other services).
func DefaultPasswordHashing() *argon2id.Params {
	return &argon2id.Params{Memory: 64 * 1024, Iterations: 2, Parallelism: 2, SaltLength: 16, KeyLength: 32}
}

// CheckPassword returns EINVALID with a field error when password breaks the
// policy: at least MinPasswordLength characters, MinPasswordClasses character
// classes, not containing the username.
func CheckPassword(username, password, field string) error {
	n := len([]rune(password))
	switch {
	case n < MinPasswordLength:
		return invalidField(field, "must be at least %d characters", MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return invalidField(field, "must be at most %d bytes", MaxPasswordLength)
	}
	var lower, upper, digit, other bool
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsControl(r):
			return invalidField(field, "must not contain control characters")
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	if classes < MinPasswordClasses {
		return invalidField(field, "must mix at least %d of: lowercase letters, uppercase letters, digits, symbols", MinPasswordClasses)
	}
	if username != "" && strings.Contains(strings.ToLower(password), strings.ToLower(username)) {
		return invalidField(field, "must not contain the username")
	}
	return nil
}

// hashPassword returns the argon2id hash of password.
func hashPassword(password string, params *argon2id.Params) (string, error) {
	h, err := argon2id.CreateHash(password, params)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// --- inputs and outputs ---

// LoginInput is the body of login.
type LoginInput struct {
	Body struct {
		Username string `json:"username" minLength:"1" maxLength:"64" doc:"User name"`
		Password string `json:"password" minLength:"1" maxLength:"256" doc:"Password"`
	}
}

// UserView is a user as the API shows it.
type UserView struct {
	ID                 int64     `json:"id"`
	Username           string    `json:"username"`
	DisplayName        string    `json:"displayName"`
	Email              string    `json:"email"`
	Roles              []string  `json:"roles"`
	MustChangePassword bool      `json:"mustChangePassword"`
	Disabled           bool      `json:"disabled"`
	Builtin            bool      `json:"builtin"`
	LockedUntil        time.Time `json:"lockedUntil,omitzero"`
	LastLoginAt        time.Time `json:"lastLoginAt,omitzero"`
	CreatedAt          time.Time `json:"createdAt"`
}

func userView(u *ferry.User) UserView {
	v := UserView{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Email: u.Email,
		MustChangePassword: u.MustChangePassword, Disabled: u.Disabled, Builtin: u.Builtin,
		LockedUntil: u.LockedUntil, LastLoginAt: u.LastLoginAt, CreatedAt: u.CreatedAt, Roles: []string{}}
	for _, r := range u.Roles {
		v.Roles = append(v.Roles, r.Name)
	}
	return v
}

// SessionBody is the answer of login.
type SessionBody struct {
	Token              string    `json:"token" doc:"Bearer token for API clients; browsers use the cookie"`
	ExpiresAt          time.Time `json:"expiresAt"`
	MustChangePassword bool      `json:"mustChangePassword" doc:"true until the password is changed; every other call answers 403 until then"`
	User               UserView  `json:"user"`
	Permissions        []string  `json:"permissions"`
}

// LoginOutput carries the session cookie and token.
type LoginOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
	Body      SessionBody
}

// LogoutOutput clears the session cookie.
type LogoutOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
}

// MeOutput describes the caller.
type MeOutput struct {
	Body struct {
		User        UserView `json:"user"`
		Permissions []string `json:"permissions"`
		Via         string   `json:"via" enum:"session,token"`
	}
}

// ChangePasswordInput is the body of change-password.
type ChangePasswordInput struct {
	Body struct {
		CurrentPassword string `json:"currentPassword" minLength:"1" maxLength:"256"`
		NewPassword     string `json:"newPassword" minLength:"1" maxLength:"256" doc:"At least 12 characters mixing 3 of: lowercase, uppercase, digits, symbols"`
	}
}

// APITokenView is a personal API token without its secret.
type APITokenView struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Prefix     string    `json:"prefix"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt,omitzero"`
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
}

func tokenView(t *ferry.APIToken) APITokenView {
	return APITokenView{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

// CreateTokenInput is the body of create-api-token.
type CreateTokenInput struct {
	Body struct {
		Name          string `json:"name" minLength:"1" maxLength:"128" doc:"What the token is for"`
		ExpiresInDays int    `json:"expiresInDays,omitempty" minimum:"0" maximum:"3650" doc:"0: never expires"`
	}
}

// CreateTokenOutput shows the secret once.
type CreateTokenOutput struct {
	Body struct {
		Token  string       `json:"token" doc:"The secret; shown only now"`
		APIKey APITokenView `json:"apiToken"`
	}
}

// ListTokensOutput lists the caller's tokens.
type ListTokensOutput struct {
	Body struct {
		Items []APITokenView `json:"items"`
	}
}

// IDPath is a numeric path ID.
type IDPath struct {
	ID int64 `path:"id" minimum:"1" doc:"Numeric ID"`
}

func (s *Server) registerAuth() {
	tags := []string{"Authentication"}
	register(s, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/api/v1/auth/login", Tags: tags,
		Summary:     "Log in with a username and password",
		Description: "Returns a bearer token and sets an HttpOnly, SameSite=Strict session cookie. After repeated failures the account is locked for a while.",
		Errors:      []int{http.StatusUnauthorized},
	}, policy{Access: AccessPublic}, s.login)
	register(s, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/api/v1/auth/logout", Tags: tags,
		Summary: "End the current session", DefaultStatus: http.StatusNoContent,
	}, policy{Access: AccessAuthenticated, AllowPasswordChange: true}, s.logout)
	register(s, huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: "/api/v1/auth/me", Tags: tags,
		Summary: "Who am I: the caller's account and permissions",
	}, policy{Access: AccessAuthenticated, AllowPasswordChange: true}, s.me)
	register(s, huma.Operation{
		OperationID: "change-password", Method: http.MethodPost, Path: "/api/v1/auth/password", Tags: tags,
		Summary: "Change the caller's password", DefaultStatus: http.StatusNoContent,
	}, policy{Access: AccessAuthenticated, AllowPasswordChange: true}, s.changePassword)
	register(s, huma.Operation{
		OperationID: "list-api-tokens", Method: http.MethodGet, Path: "/api/v1/auth/tokens", Tags: tags,
		Summary: "List the caller's personal API tokens",
	}, policy{Access: AccessAuthenticated}, s.listTokens)
	register(s, huma.Operation{
		OperationID: "create-api-token", Method: http.MethodPost, Path: "/api/v1/auth/tokens", Tags: tags,
		Summary: "Create a personal API token (the secret is shown once)", DefaultStatus: http.StatusCreated,
	}, policy{Access: AccessAuthenticated}, s.createToken)
	register(s, huma.Operation{
		OperationID: "revoke-api-token", Method: http.MethodDelete, Path: "/api/v1/auth/tokens/{id}", Tags: tags,
		Summary: "Revoke one of the caller's API tokens", DefaultStatus: http.StatusNoContent,
	}, policy{Access: AccessAuthenticated}, s.revokeToken)
}

func (s *Server) sessionCookie(ctx context.Context, value string, expires time.Time) http.Cookie {
	c := http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.Auth.SecureCookie || stateOf(ctx).secure}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	return c
}

func (s *Server) login(ctx context.Context, in *LoginInput) (*LoginOutput, error) {
	st := stateOf(ctx)
	st.actor = in.Body.Username
	setTarget(ctx, "user:%s", in.Body.Username)
	now := s.now()
	bad := unauthorized("invalid username or password")
	u, err := s.db.FindUserByName(ctx, in.Body.Username)
	if ferry.ErrorCode(err) == ferry.ENOTFOUND {
		_, _ = argon2id.ComparePasswordAndHash(in.Body.Password, s.dummyHash)
		setDetail(ctx, "unknown user")
		return nil, bad
	} else if err != nil {
		return nil, err
	}
	if u.Locked(now) {
		setDetail(ctx, "account locked")
		return nil, problemf(http.StatusUnauthorized, CodeLocked,
			fmt.Sprintf("too many failed logins: the account is locked until %s", u.LockedUntil.UTC().Format(time.RFC3339)))
	}
	ok, err := argon2id.ComparePasswordAndHash(in.Body.Password, u.PasswordHash)
	if err != nil || !ok || u.Disabled {
		if u.Disabled {
			setDetail(ctx, "account disabled")
		} else {
			setDetail(ctx, "wrong password")
		}
		after, lerr := s.db.RecordLoginFailure(ctx, u.ID, s.cfg.Auth.LockoutThreshold, s.cfg.Auth.LockoutDuration)
		if lerr != nil {
			return nil, lerr
		}
		if after.Locked(now) {
			setDetail(ctx, "wrong password; account locked for %s", s.cfg.Auth.LockoutDuration)
		}
		return nil, bad
	}
	secret := ferry.NewSecret(sessionPrefix)
	sess := &ferry.Session{UserID: u.ID, TokenHash: ferry.HashSecret(secret), SourceAddr: st.source,
		ExpiresAt: now.Add(s.cfg.Auth.SessionTTL)}
	if err := s.db.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	if err := s.db.RecordLoginSuccess(ctx, u.ID); err != nil {
		return nil, err
	}
	p := &principal{User: u, SessionID: sess.ID}
	if err := s.loadRights(ctx, p); err != nil {
		return nil, err
	}
	st.principal = p
	out := &LoginOutput{SetCookie: s.sessionCookie(ctx, secret, sess.ExpiresAt)}
	out.Body = SessionBody{Token: secret, ExpiresAt: sess.ExpiresAt, MustChangePassword: u.MustChangePassword,
		User: userView(p.User), Permissions: nonNil(p.Permissions)}
	return out, nil
}

func (s *Server) logout(ctx context.Context, _ *struct{}) (*LogoutOutput, error) {
	p := principalOf(ctx)
	setTarget(ctx, "user:%s", p.User.Username)
	if p.SessionID != 0 {
		if err := s.db.DeleteSession(ctx, p.SessionID); err != nil && ferry.ErrorCode(err) != ferry.ENOTFOUND {
			return nil, err
		}
	}
	return &LogoutOutput{SetCookie: s.sessionCookie(ctx, "", time.Time{})}, nil
}

func (s *Server) me(ctx context.Context, _ *struct{}) (*MeOutput, error) {
	p := principalOf(ctx)
	out := &MeOutput{}
	out.Body.User = userView(p.User)
	out.Body.Permissions = nonNil(p.Permissions)
	out.Body.Via = "session"
	if p.TokenID != 0 {
		out.Body.Via = "token"
	}
	return out, nil
}

func (s *Server) changePassword(ctx context.Context, in *ChangePasswordInput) (*struct{}, error) {
	p := principalOf(ctx)
	setTarget(ctx, "user:%s", p.User.Username)
	ok, err := argon2id.ComparePasswordAndHash(in.Body.CurrentPassword, p.User.PasswordHash)
	if err != nil || !ok {
		return nil, invalidField("currentPassword", "is wrong")
	}
	if in.Body.NewPassword == in.Body.CurrentPassword {
		return nil, invalidField("newPassword", "must differ from the current password")
	}
	if err := CheckPassword(p.User.Username, in.Body.NewPassword, "newPassword"); err != nil {
		return nil, err
	}
	hash, err := hashPassword(in.Body.NewPassword, s.cfg.PasswordHashing)
	if err != nil {
		return nil, err
	}
	u := p.User
	u.PasswordHash = hash
	u.MustChangePassword = false
	u.PasswordChangedAt = s.now()
	if err := s.db.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *Server) listTokens(ctx context.Context, _ *struct{}) (*ListTokensOutput, error) {
	p := principalOf(ctx)
	toks, err := s.db.ListAPITokens(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	out := &ListTokensOutput{}
	out.Body.Items = []APITokenView{}
	for _, t := range toks {
		out.Body.Items = append(out.Body.Items, tokenView(t))
	}
	return out, nil
}

func (s *Server) createToken(ctx context.Context, in *CreateTokenInput) (*CreateTokenOutput, error) {
	p := principalOf(ctx)
	secret := ferry.NewSecret(apiTokenPrefix)
	t := &ferry.APIToken{UserID: p.User.ID, Name: in.Body.Name, Prefix: secret[:len(apiTokenPrefix)+6],
		TokenHash: ferry.HashSecret(secret)}
	if in.Body.ExpiresInDays > 0 {
		t.ExpiresAt = s.now().Add(time.Duration(in.Body.ExpiresInDays) * 24 * time.Hour)
	}
	if err := s.db.CreateAPIToken(ctx, t); err != nil {
		return nil, err
	}
	setTarget(ctx, "api-token:%d", t.ID)
	out := &CreateTokenOutput{}
	out.Body.Token = secret
	out.Body.APIKey = tokenView(t)
	return out, nil
}

func (s *Server) revokeToken(ctx context.Context, in *IDPath) (*struct{}, error) {
	p := principalOf(ctx)
	setTarget(ctx, "api-token:%d", in.ID)
	return nil, s.db.RevokeAPIToken(ctx, p.User.ID, in.ID)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
