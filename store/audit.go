package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// auditHead is the single row naming the newest audit record, so that
// deleting the newest records is detected too.
type auditHead struct {
	bun.BaseModel `bun:"table:audit_head"`

	ID       int    `bun:"id,pk"`
	LastID   int64  `bun:"last_id"`
	LastHash string `bun:"last_hash"`
}

// AppendAudit appends rec to the operation log: it sets rec.ID to the next
// number, rec.Time to now when zero, rec.PrevHash to the newest record's
// hash and rec.Hash to the chain hash. Appends are serialised (a row lock on
// PostgreSQL, the single writer on SQLite), so the chain never forks.
// Returns EINVALID if rec does not validate.
func (db *DB) AppendAudit(ctx context.Context, rec *ferry.AuditRecord) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	if rec.Time.IsZero() {
		rec.Time = db.now()
	}
	rec.Time = utc(rec.Time)
	return db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		head := new(auditHead)
		if err := db.forUpdate(tx.NewSelect().Model(head).Where("id = 1")).Scan(ctx); err != nil {
			return fmt.Errorf("store: read audit chain head: %w", err)
		}
		rec.ID = head.LastID + 1
		rec.PrevHash = head.LastHash
		rec.Hash = rec.ComputeHash(rec.PrevHash)
		if _, err := tx.NewInsert().Model(rec).Exec(ctx); err != nil {
			return translate(err, "audit_records", opWrite, "append audit record")
		}
		head.LastID, head.LastHash = rec.ID, rec.Hash
		if _, err := tx.NewUpdate().Model(head).Column("last_id", "last_hash").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("store: advance audit chain head: %w", err)
		}
		return nil
	})
}

// ListAudit returns one page of audit records, newest first unless
// f.Ascending, and the number of records matching the filter.
func (db *DB) ListAudit(ctx context.Context, f ferry.AuditFilter) ([]*ferry.AuditRecord, int, error) {
	if err := checkText("actor", f.Actor, "action", f.Action, "target", f.Target, "result", f.Result); err != nil {
		return nil, 0, err
	}
	if err := checkTimes("since", f.Since, "until", f.Until); err != nil {
		return nil, 0, err
	}
	offset, limit := page(f.Offset, f.Limit)
	var recs []*ferry.AuditRecord
	q := db.r.NewSelect().Model(&recs)
	if f.ActorID != 0 {
		q = q.Where("actor_id = ?", f.ActorID)
	}
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	switch {
	case strings.HasSuffix(f.Action, "."):
		q = q.Where(`action LIKE ? ESCAPE '\'`, strings.TrimPrefix(likePattern(f.Action), "%"))
	case f.Action != "":
		q = q.Where("action = ?", f.Action)
	}
	if f.Target != "" {
		q = q.Where("target = ?", f.Target)
	}
	if f.Result != "" {
		q = q.Where("result = ?", f.Result)
	}
	if !f.Since.IsZero() {
		q = q.Where("? >= ?", bun.Ident("time"), utc(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where("? < ?", bun.Ident("time"), utc(f.Until))
	}
	if f.Ascending {
		q = q.Order("id")
	} else {
		q = q.Order("id DESC")
	}
	n, err := q.Offset(offset).Limit(limit).ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list audit records: %w", err)
	}
	return recs, int(n), nil
}

// auditBatch is how many records VerifyAuditChain reads at a time.
const auditBatch = 1000

// VerifyAuditChain walks the audit log from the first record to the chain
// head and reports the first record that is missing, out of place, edited
// or not linked to its predecessor. Records appended during the walk are
// not examined. An error is returned only when the database fails.
func (db *DB) VerifyAuditChain(ctx context.Context) (ferry.AuditVerification, error) {
	var v ferry.AuditVerification
	head := new(auditHead)
	if err := db.r.NewSelect().Model(head).Where("id = 1").Scan(ctx); err != nil {
		return v, fmt.Errorf("store: read audit chain head: %w", err)
	}
	broken := func(id int64, format string, args ...any) (ferry.AuditVerification, error) {
		v.FirstBrokenID, v.Reason = id, fmt.Sprintf(format, args...)
		return v, nil
	}
	var lastID int64
	prevHash := ""
	for {
		var recs []*ferry.AuditRecord
		err := db.r.NewSelect().Model(&recs).Where("id > ? AND id <= ?", lastID, head.LastID).
			Order("id").Limit(auditBatch).Scan(ctx)
		if err != nil {
			return v, fmt.Errorf("store: read audit records: %w", err)
		}
		for _, r := range recs {
			v.Checked++
			switch {
			case r.ID != lastID+1:
				return broken(r.ID, "%s missing before record %d", span(lastID+1, r.ID-1), r.ID)
			case r.ComputeHash(r.PrevHash) != r.Hash:
				return broken(r.ID, "record %d was altered: its content does not match its hash", r.ID)
			case r.PrevHash != prevHash:
				return broken(r.ID, "record %d does not link to record %d: the chain was altered before it", r.ID, lastID)
			}
			lastID, prevHash = r.ID, r.Hash
		}
		if len(recs) < auditBatch {
			break
		}
	}
	switch {
	case lastID != head.LastID:
		return broken(lastID+1, "%s missing at the end of the log", span(lastID+1, head.LastID))
	case prevHash != head.LastHash:
		return broken(lastID, "record %d does not match the chain head", lastID)
	}
	v.Valid = true
	return v, nil
}

// span names the records from first to last.
func span(first, last int64) string {
	if first == last {
		return fmt.Sprintf("record %d is", first)
	}
	return fmt.Sprintf("records %d to %d are", first, last)
}
