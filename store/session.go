package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// CreateSession stores a session (only the hash of its secret) and sets its
// ID, CreatedAt and LastSeenAt.
// Returns EINVALID if it does not validate or the user does not exist,
// ECONFLICT if the hash is already in use.
func (db *DB) CreateSession(ctx context.Context, s *ferry.Session) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.CreatedAt = db.now()
	s.LastSeenAt = s.CreatedAt
	s.ExpiresAt = utc(s.ExpiresAt)
	if _, err := db.w.NewInsert().Model(s).Exec(ctx); err != nil {
		return translate(err, "sessions", opWrite, "create session")
	}
	return nil
}

// FindSessionByHash returns the unexpired session whose secret hashes to
// tokenHash, with its user and the user's roles.
// Returns ENOTFOUND if there is none or it has expired.
func (db *DB) FindSessionByHash(ctx context.Context, tokenHash string) (*ferry.Session, error) {
	if err := checkText("tokenHash", tokenHash); err != nil {
		return nil, err
	}
	s := new(ferry.Session)
	err := db.r.NewSelect().Model(s).
		Where("token_hash = ? AND expires_at > ?", tokenHash, db.now()).Scan(ctx)
	if err != nil {
		return nil, notFound(err, "find session", "session not found or expired")
	}
	if s.User, err = db.FindUserByID(ctx, s.UserID); err != nil {
		return nil, err
	}
	return s, nil
}

// TouchSession records activity on the session and moves its expiry to
// expiresAt (sliding sessions); a zero expiresAt keeps it.
// Returns ENOTFOUND if the session does not exist.
func (db *DB) TouchSession(ctx context.Context, id int64, expiresAt time.Time) error {
	if err := checkTimes("expiresAt", expiresAt); err != nil {
		return err
	}
	q := db.w.NewUpdate().Model((*ferry.Session)(nil)).Set("last_seen_at = ?", db.now()).Where("id = ?", id)
	if !expiresAt.IsZero() {
		q = q.Set("expires_at = ?", utc(expiresAt))
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return translate(err, "sessions", opWrite, "touch session")
	}
	return affected(res, "session %d not found", id)
}

// DeleteSession ends a session (logout).
// Returns ENOTFOUND if it does not exist.
func (db *DB) DeleteSession(ctx context.Context, id int64) error {
	res, err := db.w.NewDelete().Model((*ferry.Session)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "sessions", opDelete, "delete session")
	}
	return affected(res, "session %d not found", id)
}

// DeleteUserSessions ends every session of the user (password change,
// disabling) and returns how many there were.
func (db *DB) DeleteUserSessions(ctx context.Context, userID int64) (int, error) {
	res, err := db.w.NewDelete().Model((*ferry.Session)(nil)).Where("user_id = ?", userID).Exec(ctx)
	if err != nil {
		return 0, translate(err, "sessions", opDelete, "delete user sessions")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// DeleteExpiredSessions removes sessions expired before now and returns
// how many it removed.
func (db *DB) DeleteExpiredSessions(ctx context.Context) (int, error) {
	res, err := db.w.NewDelete().Model((*ferry.Session)(nil)).Where("expires_at <= ?", db.now()).Exec(ctx)
	if err != nil {
		return 0, translate(err, "sessions", opDelete, "delete expired sessions")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CreateAPIToken stores a token (only the hash of its secret) and sets its
// ID and CreatedAt.
// Returns EINVALID if it does not validate or the user does not exist,
// ECONFLICT if the hash is already in use.
func (db *DB) CreateAPIToken(ctx context.Context, t *ferry.APIToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.CreatedAt = db.now()
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = utc(t.ExpiresAt), utc(t.LastUsedAt), utc(t.RevokedAt)
	if _, err := db.w.NewInsert().Model(t).Exec(ctx); err != nil {
		return translate(err, "api_tokens", opWrite, "create API token")
	}
	return nil
}

// FindAPITokenByHash returns the active (unrevoked, unexpired) token whose
// secret hashes to tokenHash, with its user and the user's roles, and
// records its use.
// Returns ENOTFOUND if there is no such active token.
func (db *DB) FindAPITokenByHash(ctx context.Context, tokenHash string) (*ferry.APIToken, error) {
	if err := checkText("tokenHash", tokenHash); err != nil {
		return nil, err
	}
	now := db.now()
	t := new(ferry.APIToken)
	err := db.r.NewSelect().Model(t).
		Where("token_hash = ? AND revoked_at IS NULL", tokenHash).
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("expires_at IS NULL").WhereOr("expires_at > ?", now)
		}).Scan(ctx)
	if err != nil {
		return nil, notFound(err, "find API token", "API token not found, expired or revoked")
	}
	if _, err := db.w.NewUpdate().Model(t).Set("last_used_at = ?", now).WherePK().Exec(ctx); err != nil {
		return nil, translate(err, "api_tokens", opWrite, "record API token use")
	}
	t.LastUsedAt = now
	if t.User, err = db.FindUserByID(ctx, t.UserID); err != nil {
		return nil, err
	}
	return t, nil
}

// ListAPITokens returns the user's tokens, newest first, revoked ones
// included.
func (db *DB) ListAPITokens(ctx context.Context, userID int64) ([]*ferry.APIToken, error) {
	var tokens []*ferry.APIToken
	if err := db.r.NewSelect().Model(&tokens).Where("user_id = ?", userID).Order("created_at DESC", "id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list API tokens: %w", err)
	}
	return tokens, nil
}

// RevokeAPIToken revokes the user's token; revoking twice is a no-op.
// Returns ENOTFOUND if the user has no token with that ID.
func (db *DB) RevokeAPIToken(ctx context.Context, userID, id int64) error {
	res, err := db.w.NewUpdate().Model((*ferry.APIToken)(nil)).
		Set("revoked_at = COALESCE(revoked_at, ?)", db.now()).
		Where("id = ? AND user_id = ?", id, userID).Exec(ctx)
	if err != nil {
		return translate(err, "api_tokens", opWrite, "revoke API token")
	}
	return affected(res, "API token %d not found", id)
}
