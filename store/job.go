package store

import (
	"context"
	"fmt"

	"github.com/ferry-migrate/ferry"
	"github.com/uptrace/bun"
)

// jobOptionColumns are the columns UpdateJob writes: the options, not the
// state, which SetJobState owns.
var jobOptionColumns = []string{
	"name", "description", "mode", "source_host_id", "source_paths", "target_host_id",
	"target_path", "excludes", "system_profile", "checksum_mode", "error_policy",
	"orphan_policy", "compression", "encryption", "encryption_key", "bandwidth_schedule",
	"lag_threshold_ns", "host_offline_grace_ns", "cutover", "version", "updated_at",
}

func normalizeJob(j *ferry.Job) {
	if j.SourcePaths == nil {
		j.SourcePaths = []string{}
	}
	if j.Excludes == nil {
		j.Excludes = []string{}
	}
	j.StartedAt, j.FinishedAt = utc(j.StartedAt), utc(j.FinishedAt)
}

func jobRefs(j *ferry.Job) map[string]any {
	return map[string]any{"source_host_id": j.SourceHostID, "target_host_id": j.TargetHostID, "created_by_id": j.CreatedByID}
}

// CreateJob applies defaults to j, validates it, gives it a new ID when it
// has none, sets Version to 1 and the timestamps, and stores it.
// Returns EINVALID if it does not validate or a host it names does not
// exist, ECONFLICT if the ID is taken.
func (db *DB) CreateJob(ctx context.Context, j *ferry.Job) error {
	j.ApplyDefaults()
	if err := j.Validate(); err != nil {
		return err
	}
	if j.ID == "" {
		j.ID = ferry.NewID()
	}
	j.Version = 1
	j.CreatedAt = db.now()
	j.UpdatedAt = j.CreatedAt
	normalizeJob(j)
	if _, err := db.w.NewInsert().Model(j).Exec(ctx); err != nil {
		return db.translateRefs(ctx, db.w, err, "jobs", jobRefs(j), "create job")
	}
	return nil
}

// FindJobByID returns the job.
// Returns ENOTFOUND if it does not exist.
func (db *DB) FindJobByID(ctx context.Context, id string) (*ferry.Job, error) {
	if err := checkText("id", id); err != nil {
		return nil, err
	}
	j := new(ferry.Job)
	if err := db.r.NewSelect().Model(j).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err, "find job", "job %q not found", id)
	}
	return j, nil
}

// ListJobs returns one page of jobs, newest first, and the number of jobs
// matching the filter.
// Returns EINVALID if the filter names an unknown state.
func (db *DB) ListJobs(ctx context.Context, f ferry.JobFilter) ([]*ferry.Job, int, error) {
	if err := checkText("hostId", f.HostID, "sourceHostId", f.SourceHostID, "targetHostId", f.TargetHostID, "query", f.Query); err != nil {
		return nil, 0, err
	}
	offset, limit := page(f.Offset, f.Limit)
	for _, s := range f.States {
		if !s.Valid() {
			return nil, 0, &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("unknown job state %q", s),
				Fields: []ferry.FieldError{{Field: "state", Message: "unknown state"}}}
		}
	}
	var jobs []*ferry.Job
	q := db.r.NewSelect().Model(&jobs)
	if len(f.States) > 0 {
		q = q.Where("state IN (?)", bun.List(f.States))
	}
	if f.HostID != "" {
		q = q.Where("(source_host_id = ? OR target_host_id = ?)", f.HostID, f.HostID)
	}
	if f.SourceHostID != "" {
		q = q.Where("source_host_id = ?", f.SourceHostID)
	}
	if f.TargetHostID != "" {
		q = q.Where("target_host_id = ?", f.TargetHostID)
	}
	if f.CreatedByID != 0 {
		q = q.Where("created_by_id = ?", f.CreatedByID)
	}
	if f.Query != "" {
		p := likePattern(f.Query)
		q = q.Where(`(lower(name) LIKE lower(?) ESCAPE '\' OR lower(description) LIKE lower(?) ESCAPE '\')`, p, p)
	}
	n, err := q.Order("created_at DESC", "id DESC").Offset(offset).Limit(limit).ScanAndCount(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list jobs: %w", err)
	}
	return jobs, int(n), nil
}

// UpdateJob writes the job's options (not its state, see SetJobState) if
// j.Version is the stored version, then increments j.Version.
// Returns EINVALID if it does not validate or names a missing host,
// ENOTFOUND if the job does not exist, ECONFLICT if it was changed since j
// was read.
func (db *DB) UpdateJob(ctx context.Context, j *ferry.Job) error {
	j.ApplyDefaults()
	if err := j.Validate(); err != nil {
		return err
	}
	normalizeJob(j)
	return db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var version int64
		err := db.forUpdate(tx.NewSelect().Model((*ferry.Job)(nil)).Column("version").Where("id = ?", j.ID)).Scan(ctx, &version)
		if err != nil {
			return notFound(err, "update job", "job %q not found", j.ID)
		}
		if version != j.Version {
			return ferry.Errorf(ferry.ECONFLICT, "job %q was changed by someone else (version %d, yours %d); reload it and retry", j.ID, version, j.Version)
		}
		j.Version++
		j.UpdatedAt = db.now()
		if _, err := tx.NewUpdate().Model(j).Column(jobOptionColumns...).WherePK().Exec(ctx); err != nil {
			j.Version--
			return db.translateRefs(ctx, tx, err, "jobs", jobRefs(j), "update job")
		}
		return nil
	})
}

// SetJobState records a state change reported by the job's workflow and
// appends the matching JobEventState event in the same transaction. It sets
// StartedAt on the first move out of pending and FinishedAt on entering
// cutover_complete, failed or cancelled (clearing it otherwise). reason is
// kept as the job's StateReason. It returns the event.
// Returns EINVALID for an unknown state, ENOTFOUND if the job does not exist.
func (db *DB) SetJobState(ctx context.Context, id string, to ferry.JobState, reason, actor string) (*ferry.JobEvent, error) {
	if !to.Valid() {
		return nil, &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("unknown job state %q", to),
			Fields: []ferry.FieldError{{Field: "state", Message: "unknown state"}}}
	}
	now := db.now()
	ev := &ferry.JobEvent{JobID: id, Time: now, Type: ferry.JobEventState, ToState: to, Actor: actor, Message: reason}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	err := db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		j := new(ferry.Job)
		err := db.forUpdate(tx.NewSelect().Model(j).Column("state", "started_at").Where("id = ?", id)).Scan(ctx)
		if err != nil {
			return notFound(err, "set job state", "job %q not found", id)
		}
		ev.FromState = j.State
		q := tx.NewUpdate().Model((*ferry.Job)(nil)).
			Set("state = ?", to).Set("state_reason = ?", reason).Set("updated_at = ?", now).
			Where("id = ?", id)
		if j.StartedAt.IsZero() && to != ferry.JobPending {
			q = q.Set("started_at = ?", now)
		}
		switch to {
		case ferry.JobCutoverComplete, ferry.JobFailed, ferry.JobCancelled:
			q = q.Set("finished_at = ?", now)
		default:
			q = q.Set("finished_at = NULL")
		}
		if _, err := q.Exec(ctx); err != nil {
			return translate(err, "jobs", opWrite, "set job state")
		}
		if _, err := tx.NewInsert().Model(ev).Exec(ctx); err != nil {
			return translate(err, "job_events", opWrite, "append job event")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// DeleteJob deletes the job with its events and alarm rules. Removing the
// target data is the workflow's business, before this call.
// Returns ENOTFOUND if it does not exist.
func (db *DB) DeleteJob(ctx context.Context, id string) error {
	if err := checkText("id", id); err != nil {
		return err
	}
	res, err := db.w.NewDelete().Model((*ferry.Job)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return translate(err, "jobs", opDelete, "delete job")
	}
	return affected(res, "job %q not found", id)
}
