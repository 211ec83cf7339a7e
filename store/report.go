package store

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry"
)

var reportColumns = []string{
	"name", "items", "period", "cron", "time_zone", "format", "recipients", "enabled", "updated_at",
}

// CreateReportSchedule stores a new schedule and sets its ID and timestamps.
// Returns EINVALID if it does not validate, ECONFLICT if the name is taken.
func (db *DB) CreateReportSchedule(ctx context.Context, r *ferry.ReportSchedule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.CreatedAt = db.now()
	r.UpdatedAt = r.CreatedAt
	r.LastRunAt = utc(r.LastRunAt)
	if _, err := db.w.NewInsert().Model(r).Exec(ctx); err != nil {
		return db.translateRefs(ctx, db.w, err, "report_schedules", map[string]any{"created_by_id": r.CreatedByID}, "create report schedule")
	}
	return nil
}

// FindReportScheduleByID returns the schedule.
// Returns ENOTFOUND if it does not exist.
func (db *DB) FindReportScheduleByID(ctx context.Context, id int64) (*ferry.ReportSchedule, error) {
	r := new(ferry.ReportSchedule)
	if err := db.r.NewSelect().Model(r).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "find report schedule", "report schedule %d not found", id)
	}
	return r, nil
}

// ListReportSchedules returns every schedule ordered by name.
func (db *DB) ListReportSchedules(ctx context.Context) ([]*ferry.ReportSchedule, error) {
	var rs []*ferry.ReportSchedule
	if err := db.r.NewSelect().Model(&rs).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list report schedules: %w", err)
	}
	return rs, nil
}

// UpdateReportSchedule writes the schedule's definition (not CreatedByID,
// LastRunAt or CreatedAt).
// Returns EINVALID if it does not validate, ENOTFOUND if it does not exist,
// ECONFLICT if the new name is taken.
func (db *DB) UpdateReportSchedule(ctx context.Context, r *ferry.ReportSchedule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.UpdatedAt = db.now()
	res, err := db.w.NewUpdate().Model(r).Column(reportColumns...).WherePK().Exec(ctx)
	if err != nil {
		return translate(err, "report_schedules", opWrite, "update report schedule")
	}
	return affected(res, "report schedule %d not found", r.ID)
}

// MarkReportRun records that the schedule delivered a report now.
// Returns ENOTFOUND if it does not exist.
func (db *DB) MarkReportRun(ctx context.Context, id int64) error {
	res, err := db.w.NewUpdate().Model((*ferry.ReportSchedule)(nil)).
		Set("last_run_at = ?", db.now()).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "report_schedules", opWrite, "mark report run")
	}
	return affected(res, "report schedule %d not found", id)
}

// DeleteReportSchedule deletes the schedule.
// Returns ENOTFOUND if it does not exist.
func (db *DB) DeleteReportSchedule(ctx context.Context, id int64) error {
	res, err := db.w.NewDelete().Model((*ferry.ReportSchedule)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "report_schedules", opDelete, "delete report schedule")
	}
	return affected(res, "report schedule %d not found", id)
}
