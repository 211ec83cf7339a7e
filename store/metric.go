package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// AppendMetrics stores a batch of samples in one statement (Time defaults
// to now).
// Returns EINVALID if a sample does not validate; then none is stored.
func (db *DB) AppendMetrics(ctx context.Context, samples []ferry.MetricSample) error {
	if len(samples) == 0 {
		return nil
	}
	now := db.now()
	for i := range samples {
		if samples[i].Time.IsZero() {
			samples[i].Time = now
		}
		samples[i].Time = utc(samples[i].Time)
		if err := samples[i].Validate(); err != nil {
			return err
		}
	}
	if _, err := db.w.NewInsert().Model(&samples).Exec(ctx); err != nil {
		return translate(err, "metric_samples", opWrite, "append metrics")
	}
	return nil
}

// ListMetrics returns the subject's samples, oldest first, at most
// f.Limit (default ferry.DefaultPageSize, capped at ferry.MaxPageSize × 10
// for charts).
// Returns EINVALID if the filter has no subject.
func (db *DB) ListMetrics(ctx context.Context, f ferry.MetricFilter) ([]ferry.MetricSample, error) {
	if f.Subject == "" {
		return nil, &ferry.Error{Code: ferry.EINVALID, Message: "metric subject is required",
			Fields: []ferry.FieldError{{Field: "subject", Message: "is required"}}}
	}
	if err := checkText(append([]string{"subject", f.Subject}, pairs("names", f.Names)...)...); err != nil {
		return nil, err
	}
	if err := checkTimes("since", f.Since, "until", f.Until); err != nil {
		return nil, err
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = ferry.DefaultPageSize
	case limit > 10*ferry.MaxPageSize:
		limit = 10 * ferry.MaxPageSize
	}
	var samples []ferry.MetricSample
	q := db.r.NewSelect().Model(&samples).Where("subject = ?", f.Subject)
	if len(f.Names) > 0 {
		q = q.Where("name IN (?)", bun.List(f.Names))
	}
	if !f.Since.IsZero() {
		q = q.Where("? >= ?", bun.Ident("time"), utc(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where("? < ?", bun.Ident("time"), utc(f.Until))
	}
	if err := q.OrderExpr("? ASC, id ASC", bun.Ident("time")).Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list metrics: %w", err)
	}
	return samples, nil
}

// DeleteMetricsBefore removes samples older than t (retention) and returns
// how many it removed.
func (db *DB) DeleteMetricsBefore(ctx context.Context, t time.Time) (int, error) {
	if err := checkTimes("before", t); err != nil {
		return 0, err
	}
	res, err := db.w.NewDelete().Model((*ferry.MetricSample)(nil)).Where("? < ?", bun.Ident("time"), utc(t)).Exec(ctx)
	if err != nil {
		return 0, translate(err, "metric_samples", opDelete, "delete metrics")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
