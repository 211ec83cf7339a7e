package store

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry"
)

var alarmRuleColumns = []string{
	"name", "kind", "enabled", "threshold", "for_ns", "job_id", "host_id", "severity",
	"channels", "repeat_interval_ns", "notify_recovery", "updated_at",
}

func alarmRuleRefs(r *ferry.AlarmRule) map[string]any {
	return map[string]any{"job_id": r.JobID, "host_id": r.HostID}
}

// CreateAlarmRule stores a new rule and sets its ID and timestamps.
// Returns EINVALID if it does not validate or names a missing job or host,
// ECONFLICT if the name is taken.
func (db *DB) CreateAlarmRule(ctx context.Context, r *ferry.AlarmRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Channels == nil {
		r.Channels = []ferry.AlarmChannel{}
	}
	r.CreatedAt = db.now()
	r.UpdatedAt = r.CreatedAt
	if _, err := db.w.NewInsert().Model(r).Exec(ctx); err != nil {
		return db.translateRefs(ctx, db.w, err, "alarm_rules", alarmRuleRefs(r), "create alarm rule")
	}
	return nil
}

// FindAlarmRuleByID returns the rule.
// Returns ENOTFOUND if it does not exist.
func (db *DB) FindAlarmRuleByID(ctx context.Context, id int64) (*ferry.AlarmRule, error) {
	r := new(ferry.AlarmRule)
	if err := db.r.NewSelect().Model(r).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "find alarm rule", "alarm rule %d not found", id)
	}
	return r, nil
}

// ListAlarmRules returns the rules ordered by name, only enabled ones when
// enabledOnly.
func (db *DB) ListAlarmRules(ctx context.Context, enabledOnly bool) ([]*ferry.AlarmRule, error) {
	var rules []*ferry.AlarmRule
	q := db.r.NewSelect().Model(&rules).Order("name")
	if enabledOnly {
		q = q.Where("enabled = ?", true)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: list alarm rules: %w", err)
	}
	return rules, nil
}

// UpdateAlarmRule writes every field of the rule but its ID and CreatedAt.
// Returns EINVALID if it does not validate or names a missing job or host,
// ENOTFOUND if it does not exist, ECONFLICT if the new name is taken.
func (db *DB) UpdateAlarmRule(ctx context.Context, r *ferry.AlarmRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Channels == nil {
		r.Channels = []ferry.AlarmChannel{}
	}
	r.UpdatedAt = db.now()
	res, err := db.w.NewUpdate().Model(r).Column(alarmRuleColumns...).WherePK().Exec(ctx)
	if err != nil {
		return db.translateRefs(ctx, db.w, err, "alarm_rules", alarmRuleRefs(r), "update alarm rule")
	}
	return affected(res, "alarm rule %d not found", r.ID)
}

// DeleteAlarmRule deletes the rule; its records stay, without a rule ID.
// Returns ENOTFOUND if it does not exist.
func (db *DB) DeleteAlarmRule(ctx context.Context, id int64) error {
	res, err := db.w.NewDelete().Model((*ferry.AlarmRule)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "alarm_rules", opDelete, "delete alarm rule")
	}
	return affected(res, "alarm rule %d not found", id)
}

// FireAlarm stores a new firing record and sets its ID (FiredAt defaults to
// now).
// Returns EINVALID if it does not validate or the rule does not exist,
// ECONFLICT if the rule already fires for that subject.
func (db *DB) FireAlarm(ctx context.Context, a *ferry.AlarmRecord) error {
	if a.FiredAt.IsZero() {
		a.FiredAt = db.now()
	}
	if a.State == "" {
		a.State = ferry.AlarmFiring
	}
	if err := a.Validate(); err != nil {
		return err
	}
	a.FiredAt, a.LastNotifiedAt, a.RecoveredAt, a.AcknowledgedAt = utc(a.FiredAt), utc(a.LastNotifiedAt), utc(a.RecoveredAt), utc(a.AcknowledgedAt)
	if _, err := db.w.NewInsert().Model(a).Exec(ctx); err != nil {
		return translate(err, "alarm_records", opWrite, "fire alarm")
	}
	return nil
}

// FindFiringAlarm returns the record of the rule that fires for subject.
// Returns ENOTFOUND if there is none.
func (db *DB) FindFiringAlarm(ctx context.Context, ruleID int64, subject string) (*ferry.AlarmRecord, error) {
	if err := checkText("subject", subject); err != nil {
		return nil, err
	}
	a := new(ferry.AlarmRecord)
	err := db.r.NewSelect().Model(a).
		Where("rule_id = ? AND subject = ? AND state = ?", ruleID, subject, ferry.AlarmFiring).Scan(ctx)
	if err != nil {
		return nil, notFound(err, "find firing alarm", "alarm rule %d is not firing for %s", ruleID, subject)
	}
	return a, nil
}

// FindAlarmRecordByID returns the record.
// Returns ENOTFOUND if it does not exist.
func (db *DB) FindAlarmRecordByID(ctx context.Context, id int64) (*ferry.AlarmRecord, error) {
	a := new(ferry.AlarmRecord)
	if err := db.r.NewSelect().Model(a).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "find alarm record", "alarm record %d not found", id)
	}
	return a, nil
}

// AlarmNotified records that a notice for the alarm was sent now.
// Returns ENOTFOUND if the record does not exist.
func (db *DB) AlarmNotified(ctx context.Context, id int64) error {
	res, err := db.w.NewUpdate().Model((*ferry.AlarmRecord)(nil)).
		Set("last_notified_at = ?", db.now()).Set("notify_count = notify_count + 1").
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "alarm_records", opWrite, "record alarm notice")
	}
	return affected(res, "alarm record %d not found", id)
}

// RecoverAlarm marks a firing alarm recovered now.
// Returns ENOTFOUND if the record does not exist or is not firing.
func (db *DB) RecoverAlarm(ctx context.Context, id int64) error {
	res, err := db.w.NewUpdate().Model((*ferry.AlarmRecord)(nil)).
		Set("state = ?", ferry.AlarmRecovered).Set("recovered_at = ?", db.now()).
		Where("id = ? AND state = ?", id, ferry.AlarmFiring).Exec(ctx)
	if err != nil {
		return translate(err, "alarm_records", opWrite, "recover alarm")
	}
	return affected(res, "alarm record %d not found or not firing", id)
}

// AcknowledgeAlarm records that user acknowledged the alarm; acknowledging
// twice keeps the first acknowledgement.
// Returns ENOTFOUND if the record does not exist.
func (db *DB) AcknowledgeAlarm(ctx context.Context, id int64, user string) error {
	if err := checkText("user", user); err != nil {
		return err
	}
	res, err := db.w.NewUpdate().Model((*ferry.AlarmRecord)(nil)).
		Set("acknowledged_at = COALESCE(acknowledged_at, ?)", db.now()).
		Set("acknowledged_by = CASE WHEN acknowledged_at IS NULL THEN ? ELSE acknowledged_by END", user).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "alarm_records", opWrite, "acknowledge alarm")
	}
	return affected(res, "alarm record %d not found", id)
}

// ListAlarmRecords returns one page of records, newest first, and the
// number of records matching the filter.
func (db *DB) ListAlarmRecords(ctx context.Context, f ferry.AlarmRecordFilter) ([]*ferry.AlarmRecord, int, error) {
	if err := checkText("subject", f.Subject, "state", string(f.State)); err != nil {
		return nil, 0, err
	}
	if err := checkTimes("since", f.Since, "until", f.Until); err != nil {
		return nil, 0, err
	}
	offset, limit := page(f.Offset, f.Limit)
	var recs []*ferry.AlarmRecord
	q := db.r.NewSelect().Model(&recs)
	if f.RuleID != 0 {
		q = q.Where("rule_id = ?", f.RuleID)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.Subject != "" {
		q = q.Where("subject = ?", f.Subject)
	}
	if f.Acknowledged != nil {
		if *f.Acknowledged {
			q = q.Where("acknowledged_at IS NOT NULL")
		} else {
			q = q.Where("acknowledged_at IS NULL")
		}
	}
	if !f.Since.IsZero() {
		q = q.Where("fired_at >= ?", utc(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where("fired_at < ?", utc(f.Until))
	}
	n, err := q.Order("fired_at DESC", "id DESC").Offset(offset).Limit(limit).ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list alarm records: %w", err)
	}
	return recs, int(n), nil
}
