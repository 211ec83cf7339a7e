package apiserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Secret prefixes tell the kinds of bearer secrets apart.
const (
	sessionPrefix    = "fst_"
	apiTokenPrefix   = "fat_"
	enrollmentPrefix = "fet_"
)

// SessionCookie is the name of the browser session cookie.
const SessionCookie = "ferry_session"

// principal is the authenticated caller of a request.
type principal struct {
	User        *ferry.User
	Roles       []string
	Permissions []string
	SessionID   int64 // set when authenticated by a session
	TokenID     int64 // set when authenticated by an API token
}

// Can reports whether the principal holds perm.
func (p *principal) Can(perm string) bool { return slices.Contains(p.Permissions, perm) }

// principalOf returns the authenticated caller; handlers of authenticated
// operations always have one.
func principalOf(ctx context.Context) *principal {
	return stateOf(ctx).principal
}

func unauthorized(detail string) *Problem {
	return problemf(http.StatusUnauthorized, ferry.EUNAUTHORIZED, detail)
}

// authenticate finds the caller from the Authorization header or the
// session cookie. Returns a 401 Problem when neither is valid.
func (s *Server) authenticate(hctx huma.Context) (*principal, error) {
	secret := ""
	if h := hctx.Header("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return nil, unauthorized("the Authorization header must be \"Bearer <token>\"")
		}
		secret = strings.TrimSpace(rest)
	} else if c, err := http.ParseCookie(hctx.Header("Cookie")); err == nil {
		for _, ck := range c {
			if ck.Name == SessionCookie {
				secret = ck.Value
			}
		}
	}
	if secret == "" {
		return nil, unauthorized("authentication required: log in (POST /api/v1/auth/login) and send the token as a Bearer token")
	}
	if s.db == nil {
		return nil, unauthorized("no credentials store")
	}
	ctx := hctx.Context()
	now := s.now()
	hash := ferry.HashSecret(secret)
	p := &principal{}
	switch {
	case strings.HasPrefix(secret, apiTokenPrefix):
		tok, err := s.db.FindAPITokenByHash(ctx, hash)
		if err != nil {
			return nil, s.authErr(ctx, err, "unknown API token")
		}
		if !tok.Active(now) {
			return nil, unauthorized("the API token is revoked or expired")
		}
		p.TokenID = tok.ID
		p.User = tok.User
	case strings.HasPrefix(secret, sessionPrefix):
		sess, err := s.db.FindSessionByHash(ctx, hash)
		if err != nil {
			return nil, s.authErr(ctx, err, "unknown session")
		}
		if !now.Before(sess.ExpiresAt) {
			return nil, unauthorized("the session has expired: log in again")
		}
		p.SessionID = sess.ID
		p.User = sess.User
	default:
		return nil, unauthorized("unknown kind of token")
	}
	if p.User == nil {
		return nil, unauthorized("the token's user no longer exists")
	}
	if p.User.Disabled {
		return nil, unauthorized("the account is disabled")
	}
	if err := s.loadRights(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// loadRights fills the principal's role and permission names.
func (s *Server) loadRights(ctx context.Context, p *principal) error {
	perms, err := s.db.UserPermissions(ctx, p.User.ID)
	if err != nil {
		return err
	}
	p.Permissions = perms
	p.Roles = nil
	for _, r := range p.User.Roles {
		p.Roles = append(p.Roles, r.Name)
	}
	return nil
}

// authErr turns a not-found lookup into a 401 and passes other errors on.
func (s *Server) authErr(ctx context.Context, err error, detail string) error {
	if ferry.ErrorCode(err) == ferry.ENOTFOUND {
		return unauthorized(detail)
	}
	logFrom(ctx).Error("authenticate", "err", err)
	return errors.New("authentication failed")
}
