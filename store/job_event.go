package store

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// AppendJobEvent stores an event of the job and sets its ID (and Time when
// zero).
// Returns EINVALID if it does not validate or the job does not exist.
func (db *DB) AppendJobEvent(ctx context.Context, e *ferry.JobEvent) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = db.now()
	}
	e.Time = utc(e.Time)
	if _, err := db.w.NewInsert().Model(e).Exec(ctx); err != nil {
		return translate(err, "job_events", opWrite, "append job event")
	}
	return nil
}

// ListJobEvents returns one page of events, oldest first, and the number
// of events matching the filter.
func (db *DB) ListJobEvents(ctx context.Context, f ferry.JobEventFilter) ([]*ferry.JobEvent, int, error) {
	if err := checkText(append([]string{"jobId", f.JobID}, pairs("types", f.Types)...)...); err != nil {
		return nil, 0, err
	}
	if err := checkTimes("since", f.Since, "until", f.Until); err != nil {
		return nil, 0, err
	}
	offset, limit := page(f.Offset, f.Limit)
	var events []*ferry.JobEvent
	q := db.r.NewSelect().Model(&events)
	if f.JobID != "" {
		q = q.Where("job_id = ?", f.JobID)
	}
	if len(f.Types) > 0 {
		q = q.Where("type IN (?)", bun.List(f.Types))
	}
	if !f.Since.IsZero() {
		q = q.Where("? >= ?", bun.Ident("time"), utc(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where("? < ?", bun.Ident("time"), utc(f.Until))
	}
	if f.AfterID > 0 {
		q = q.Where("id > ?", f.AfterID)
	}
	n, err := q.Order("id").Offset(offset).Limit(limit).ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list job events: %w", err)
	}
	return events, int(n), nil
}
