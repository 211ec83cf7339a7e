package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// hostColumns are the columns UpdateHost writes.
var hostColumns = []string{
	"name", "hostname", "os", "platform", "arch", "kernel", "cpus", "memory_bytes",
	"disks", "addresses", "data_addr", "agent_version", "cert_serial", "cert_fingerprint",
	"cert_not_after", "updated_at",
}

// CreateHost stores a new host, giving it a new ID when it has none, and
// sets its timestamps.
// Returns EINVALID if it does not validate, ECONFLICT if the ID or name is
// taken.
func (db *DB) CreateHost(ctx context.Context, h *ferry.Host) error {
	return db.createHost(ctx, db.w, h)
}

func (db *DB) createHost(ctx context.Context, idb bun.IDB, h *ferry.Host) error {
	if err := h.Validate(); err != nil {
		return err
	}
	if h.ID == "" {
		h.ID = ferry.NewID()
	}
	h.CreatedAt = db.now()
	h.UpdatedAt = h.CreatedAt
	normalizeHost(h)
	if _, err := idb.NewInsert().Model(h).Exec(ctx); err != nil {
		return translate(err, "hosts", opWrite, "create host")
	}
	return nil
}

func normalizeHost(h *ferry.Host) {
	if h.Disks == nil {
		h.Disks = []ferry.HostDisk{}
	}
	if h.Addresses == nil {
		h.Addresses = []string{}
	}
	h.CertNotAfter, h.LastSeenAt, h.RevokedAt = utc(h.CertNotAfter), utc(h.LastSeenAt), utc(h.RevokedAt)
	h.Metrics.Time = utc(h.Metrics.Time)
}

// FindHostByID returns the host.
// Returns ENOTFOUND if it does not exist.
func (db *DB) FindHostByID(ctx context.Context, id string) (*ferry.Host, error) {
	if err := checkText("id", id); err != nil {
		return nil, err
	}
	h := new(ferry.Host)
	if err := db.r.NewSelect().Model(h).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "find host", "host %q not found", id)
	}
	return h, nil
}

// ListHosts returns one page of hosts ordered by name and the number of
// hosts matching the filter.
func (db *DB) ListHosts(ctx context.Context, f ferry.HostFilter) ([]*ferry.Host, int, error) {
	if err := checkText("name", f.Name, "query", f.Query); err != nil {
		return nil, 0, err
	}
	offset, limit := page(f.Offset, f.Limit)
	var hosts []*ferry.Host
	q := db.r.NewSelect().Model(&hosts)
	if f.Name != "" {
		q = q.Where("name = ?", f.Name)
	}
	if f.Query != "" {
		p := likePattern(f.Query)
		q = q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where(`lower(name) LIKE lower(?) ESCAPE '\'`, p).WhereOr(`lower(hostname) LIKE lower(?) ESCAPE '\'`, p)
		})
	}
	if f.Revoked != nil {
		if *f.Revoked {
			q = q.Where("revoked_at IS NOT NULL")
		} else {
			q = q.Where("revoked_at IS NULL")
		}
	}
	n, err := q.Order("name").Offset(offset).Limit(limit).ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list hosts: %w", err)
	}
	return hosts, int(n), nil
}

// UpdateHost writes the host's inventory and certificate fields (not its
// heartbeat, metrics or revocation: see Heartbeat and RevokeHost).
// Returns EINVALID if it does not validate, ENOTFOUND if the host does not
// exist, ECONFLICT if the new name is taken.
func (db *DB) UpdateHost(ctx context.Context, h *ferry.Host) error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.UpdatedAt = db.now()
	normalizeHost(h)
	res, err := db.w.NewUpdate().Model(h).Column(hostColumns...).WherePK().Exec(ctx)
	if err != nil {
		return translate(err, "hosts", opWrite, "update host")
	}
	return affected(res, "host %q not found", h.ID)
}

// Heartbeat records that the host's agent is alive at the store's now,
// with its latest metrics sample.
// Returns ENOTFOUND if the host does not exist, EFORBIDDEN if it is revoked.
func (db *DB) Heartbeat(ctx context.Context, id string, m ferry.HostMetrics) error {
	if err := checkText("id", id); err != nil {
		return err
	}
	now := db.now()
	if m.Time.IsZero() {
		m.Time = now
	}
	m.Time = utc(m.Time)
	res, err := db.w.NewUpdate().Model((*ferry.Host)(nil)).
		Set("last_seen_at = ?", now).Set("metrics = ?", m).
		Where("id = ? AND revoked_at IS NULL", id).Exec(ctx)
	if err != nil {
		return translate(err, "hosts", opWrite, "record heartbeat")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		h, err := db.FindHostByID(ctx, id)
		if err != nil {
			return err
		}
		if !h.RevokedAt.IsZero() {
			return ferry.Errorf(ferry.EFORBIDDEN, "host %q is revoked", id)
		}
	}
	return nil
}

// RevokeHost marks the host revoked: its certificate must be refused from
// now on. Revoking twice keeps the first time.
// Returns ENOTFOUND if the host does not exist.
func (db *DB) RevokeHost(ctx context.Context, id string) error {
	if err := checkText("id", id); err != nil {
		return err
	}
	now := db.now()
	res, err := db.w.NewUpdate().Model((*ferry.Host)(nil)).
		Set("revoked_at = COALESCE(revoked_at, ?)", now).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "hosts", opWrite, "revoke host")
	}
	return affected(res, "host %q not found", id)
}

// DeleteHost deletes the host.
// Returns ENOTFOUND if it does not exist, ECONFLICT if jobs still use it.
func (db *DB) DeleteHost(ctx context.Context, id string) error {
	if err := checkText("id", id); err != nil {
		return err
	}
	res, err := db.w.NewDelete().Model((*ferry.Host)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "hosts", opDelete, "delete host")
	}
	return affected(res, "host %q not found", id)
}

// CreateEnrollmentToken stores a one-time enrollment token (only the hash
// of its secret) and sets its ID and CreatedAt.
// Returns EINVALID if it does not validate, ECONFLICT if the hash is in use.
func (db *DB) CreateEnrollmentToken(ctx context.Context, t *ferry.EnrollmentToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.CreatedAt = db.now()
	t.ExpiresAt = utc(t.ExpiresAt)
	if _, err := db.w.NewInsert().Model(t).Exec(ctx); err != nil {
		return db.translateRefs(ctx, db.w, err, "enrollment_tokens",
			map[string]any{"created_by_id": t.CreatedByID}, "create enrollment token")
	}
	return nil
}

// Enroll consumes the enrollment token whose secret hashes to tokenHash and
// creates the host in the same transaction, so that a token registers at
// most one host even when agents race for it.
// Returns EUNAUTHORIZED if the token is unknown, expired or already used,
// EINVALID if the host does not validate, ECONFLICT if its name is taken (the
// token is then left unused).
func (db *DB) Enroll(ctx context.Context, tokenHash string, h *ferry.Host) error {
	if err := checkText("tokenHash", tokenHash); err != nil {
		return err
	}
	now := db.now()
	return db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		t := new(ferry.EnrollmentToken)
		err := db.forUpdate(tx.NewSelect().Model(t).
			Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", tokenHash, now)).Scan(ctx)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ferry.Errorf(ferry.EUNAUTHORIZED, "enrollment token is invalid, expired or already used")
			}
			return fmt.Errorf("store: find enrollment token: %w", err)
		}
		if err := db.createHost(ctx, tx, h); err != nil {
			return err
		}
		res, err := tx.NewUpdate().Model(t).Set("used_at = ?", now).Set("host_id = ?", h.ID).
			Where("id = ? AND used_at IS NULL", t.ID).Exec(ctx)
		if err != nil {
			return translate(err, "enrollment_tokens", opWrite, "consume enrollment token")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ferry.Errorf(ferry.EUNAUTHORIZED, "enrollment token is invalid, expired or already used")
		}
		return nil
	})
}

// ListEnrollmentTokens returns tokens created since the given time (zero:
// all), newest first.
func (db *DB) ListEnrollmentTokens(ctx context.Context, since time.Time) ([]*ferry.EnrollmentToken, error) {
	var tokens []*ferry.EnrollmentToken
	q := db.r.NewSelect().Model(&tokens).Order("created_at DESC", "id DESC")
	if !since.IsZero() {
		q = q.Where("created_at >= ?", utc(since))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list enrollment tokens: %w", err)
	}
	return tokens, nil
}

// DeleteEnrollmentToken withdraws a token.
// Returns ENOTFOUND if it does not exist.
func (db *DB) DeleteEnrollmentToken(ctx context.Context, id int64) error {
	res, err := db.w.NewDelete().Model((*ferry.EnrollmentToken)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "enrollment_tokens", opDelete, "delete enrollment token")
	}
	return affected(res, "enrollment token %d not found", id)
}
