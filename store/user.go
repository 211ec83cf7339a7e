package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// userColumns are the columns UpdateUser writes.
var userColumns = []string{
	"username", "display_name", "email", "password_hash", "must_change_password",
	"disabled", "failed_logins", "locked_until", "last_login_at", "password_changed_at", "updated_at",
}

// CreateUser stores a new user and sets its ID and timestamps. Roles are
// ignored; use AssignRole.
// Returns EINVALID if the user does not validate, ECONFLICT if the username
// is taken.
func (db *DB) CreateUser(ctx context.Context, u *ferry.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	u.CreatedAt = db.now()
	u.UpdatedAt = u.CreatedAt
	u.LockedUntil, u.LastLoginAt, u.PasswordChangedAt = utc(u.LockedUntil), utc(u.LastLoginAt), utc(u.PasswordChangedAt)
	if _, err := db.w.NewInsert().Model(u).Exec(ctx); err != nil {
		return translate(err, "users", opWrite, "create user")
	}
	return nil
}

// FindUserByID returns the user with its roles.
// Returns ENOTFOUND if no user has that ID.
func (db *DB) FindUserByID(ctx context.Context, id int64) (*ferry.User, error) {
	u := new(ferry.User)
	err := db.r.NewSelect().Model(u).Relation("Roles", orderByName).Where("?TableAlias.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, notFound(err, "find user", "user %d not found", id)
	}
	return u, nil
}

// FindUserByName returns the user with its roles.
// Returns ENOTFOUND if no user has that username.
func (db *DB) FindUserByName(ctx context.Context, username string) (*ferry.User, error) {
	if err := checkText("username", username); err != nil {
		return nil, err
	}
	u := new(ferry.User)
	err := db.r.NewSelect().Model(u).Relation("Roles", orderByName).Where("?TableAlias.username = ?", username).Scan(ctx)
	if err != nil {
		return nil, notFound(err, "find user", "user %q not found", username)
	}
	return u, nil
}

func orderByName(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("name") }

// ListUsers returns one page of users, ordered by username, with their
// roles, and the number of users matching the filter.
func (db *DB) ListUsers(ctx context.Context, f ferry.UserFilter) ([]*ferry.User, int, error) {
	if err := checkText("username", f.Username, "query", f.Query, "role", f.Role); err != nil {
		return nil, 0, err
	}
	offset, limit := page(f.Offset, f.Limit)
	var users []*ferry.User
	q := db.r.NewSelect().Model(&users).Relation("Roles", orderByName)
	if f.Username != "" {
		q = q.Where("?TableAlias.username = ?", f.Username)
	}
	if f.Query != "" {
		p := likePattern(f.Query)
		q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where(`lower(?TableAlias.username) LIKE lower(?) ESCAPE '\'`, p).
				WhereOr(`lower(?TableAlias.display_name) LIKE lower(?) ESCAPE '\'`, p).
				WhereOr(`lower(?TableAlias.email) LIKE lower(?) ESCAPE '\'`, p)
		})
	}
	if f.Role != "" {
		q = q.Where("?TableAlias.id IN (SELECT ur.user_id FROM user_roles AS ur JOIN roles AS r ON r.id = ur.role_id WHERE r.name = ?)", f.Role)
	}
	n, err := q.Order("username").Offset(offset).Limit(limit).ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list users: %w", err)
	}
	return users, int(n), nil
}

// UpdateUser writes every mutable field of u (not ID, Builtin, CreatedAt or
// Roles) and sets UpdatedAt.
// Returns EINVALID if u does not validate, ENOTFOUND if the user does not
// exist, ECONFLICT if the new username is taken.
func (db *DB) UpdateUser(ctx context.Context, u *ferry.User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	u.UpdatedAt = db.now()
	u.LockedUntil, u.LastLoginAt, u.PasswordChangedAt = utc(u.LockedUntil), utc(u.LastLoginAt), utc(u.PasswordChangedAt)
	res, err := db.w.NewUpdate().Model(u).Column(userColumns...).WherePK().Exec(ctx)
	if err != nil {
		return translate(err, "users", opWrite, "update user")
	}
	return affected(res, "user %d not found", u.ID)
}

// DeleteUser deletes the user with its sessions, tokens and role
// assignments. Audit records keep the user's name.
// Returns ENOTFOUND if the user does not exist.
func (db *DB) DeleteUser(ctx context.Context, id int64) error {
	res, err := db.w.NewDelete().Model((*ferry.User)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "users", opDelete, "delete user")
	}
	return affected(res, "user %d not found", id)
}

// RecordLoginFailure counts a failed login. When the count reaches
// maxFailures the account is locked for lockFor and the count starts over.
// It returns the updated user.
// Returns ENOTFOUND if the user does not exist.
func (db *DB) RecordLoginFailure(ctx context.Context, id int64, maxFailures int, lockFor time.Duration) (*ferry.User, error) {
	u := new(ferry.User)
	now := db.now()
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := db.forUpdate(tx.NewSelect().Model(u).Where("id = ?", id)).Scan(ctx); err != nil {
			return notFound(err, "record login failure", "user %d not found", id)
		}
		u.FailedLogins++
		if maxFailures > 0 && u.FailedLogins >= maxFailures {
			u.FailedLogins = 0
			u.LockedUntil = now.Add(lockFor)
		}
		u.UpdatedAt = now
		_, err := tx.NewUpdate().Model(u).Column("failed_logins", "locked_until", "updated_at").WherePK().Exec(ctx)
		return translate(err, "users", opWrite, "record login failure")
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// RecordLoginSuccess clears the failure count and lock and sets
// LastLoginAt.
// Returns ENOTFOUND if the user does not exist.
func (db *DB) RecordLoginSuccess(ctx context.Context, id int64) error {
	now := db.now()
	res, err := db.w.NewUpdate().Model((*ferry.User)(nil)).
		Set("failed_logins = 0").Set("locked_until = NULL").
		Set("last_login_at = ?", now).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "users", opWrite, "record login success")
	}
	return affected(res, "user %d not found", id)
}
