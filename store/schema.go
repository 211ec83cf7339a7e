package store

// migrations is the ordered list of schema changes. Never edit a released
// migration; append a new one.
var migrations = []migration{
	{Version: 1, Name: "initial schema", SQL: schemaV1, Postgres: schemaV1Postgres, SQLite: schemaV1SQLite},
	{Version: 2, Name: "metric samples", SQL: schemaV2},
	{Version: 3, Name: "host data address", SQL: schemaV3},
}

const schemaV1 = `
CREATE TABLE users (
	id {{pk}},
	username TEXT NOT NULL CONSTRAINT users_username_key UNIQUE CONSTRAINT users_username_check CHECK (username <> ''),
	display_name TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL CONSTRAINT users_password_hash_check CHECK (password_hash <> ''),
	must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
	disabled BOOLEAN NOT NULL DEFAULT FALSE,
	builtin BOOLEAN NOT NULL DEFAULT FALSE,
	failed_logins INTEGER NOT NULL DEFAULT 0 CONSTRAINT users_failed_logins_check CHECK (failed_logins >= 0),
	locked_until {{ts}},
	last_login_at {{ts}},
	password_changed_at {{ts}},
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);

CREATE TABLE roles (
	id {{pk}},
	name TEXT NOT NULL CONSTRAINT roles_name_key UNIQUE CONSTRAINT roles_name_check CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT '',
	builtin BOOLEAN NOT NULL DEFAULT FALSE,
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);

CREATE TABLE permissions (
	id {{pk}},
	name TEXT NOT NULL CONSTRAINT permissions_name_key UNIQUE CONSTRAINT permissions_name_check CHECK (name LIKE '%_:_%'),
	description TEXT NOT NULL DEFAULT '',
	builtin BOOLEAN NOT NULL DEFAULT FALSE,
	restricted BOOLEAN NOT NULL DEFAULT FALSE,
	created_at {{ts}} NOT NULL
);

CREATE TABLE user_roles (
	user_id BIGINT NOT NULL CONSTRAINT user_roles_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
	role_id BIGINT NOT NULL CONSTRAINT user_roles_role_id_fkey REFERENCES roles (id) ON DELETE CASCADE,
	CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

CREATE TABLE role_permissions (
	role_id BIGINT NOT NULL CONSTRAINT role_permissions_role_id_fkey REFERENCES roles (id) ON DELETE CASCADE,
	permission_id BIGINT NOT NULL CONSTRAINT role_permissions_permission_id_fkey REFERENCES permissions (id) ON DELETE CASCADE,
	CONSTRAINT role_permissions_pkey PRIMARY KEY (role_id, permission_id)
);
CREATE INDEX role_permissions_permission_id_idx ON role_permissions (permission_id);

CREATE TABLE sessions (
	id {{pk}},
	user_id BIGINT NOT NULL CONSTRAINT sessions_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
	token_hash TEXT NOT NULL CONSTRAINT sessions_token_hash_key UNIQUE,
	source_addr TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	created_at {{ts}} NOT NULL,
	expires_at {{ts}} NOT NULL,
	last_seen_at {{ts}} NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE api_tokens (
	id {{pk}},
	user_id BIGINT NOT NULL CONSTRAINT api_tokens_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL CONSTRAINT api_tokens_name_check CHECK (name <> ''),
	prefix TEXT NOT NULL DEFAULT '',
	token_hash TEXT NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE,
	created_at {{ts}} NOT NULL,
	expires_at {{ts}},
	last_used_at {{ts}},
	revoked_at {{ts}}
);
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);

CREATE TABLE hosts (
	id TEXT NOT NULL CONSTRAINT hosts_pkey PRIMARY KEY CONSTRAINT hosts_id_check CHECK (id <> ''),
	name TEXT NOT NULL CONSTRAINT hosts_name_key UNIQUE CONSTRAINT hosts_name_check CHECK (name <> ''),
	hostname TEXT NOT NULL DEFAULT '',
	os TEXT NOT NULL DEFAULT '',
	platform TEXT NOT NULL DEFAULT '',
	arch TEXT NOT NULL DEFAULT '',
	kernel TEXT NOT NULL DEFAULT '',
	cpus INTEGER NOT NULL DEFAULT 0 CONSTRAINT hosts_cpus_check CHECK (cpus >= 0),
	memory_bytes BIGINT NOT NULL DEFAULT 0 CONSTRAINT hosts_memory_bytes_check CHECK (memory_bytes >= 0),
	disks {{json}} NOT NULL,
	addresses {{json}} NOT NULL,
	agent_version TEXT NOT NULL DEFAULT '',
	cert_serial TEXT NOT NULL DEFAULT '',
	cert_fingerprint TEXT NOT NULL DEFAULT '',
	cert_not_after {{ts}},
	metrics {{json}} NOT NULL,
	last_seen_at {{ts}},
	revoked_at {{ts}},
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);

CREATE TABLE enrollment_tokens (
	id {{pk}},
	token_hash TEXT NOT NULL CONSTRAINT enrollment_tokens_token_hash_key UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_by_id BIGINT CONSTRAINT enrollment_tokens_created_by_id_fkey REFERENCES users (id) ON DELETE SET NULL,
	created_at {{ts}} NOT NULL,
	expires_at {{ts}} NOT NULL,
	used_at {{ts}},
	host_id TEXT CONSTRAINT enrollment_tokens_host_id_fkey REFERENCES hosts (id) ON DELETE SET NULL
);

CREATE TABLE jobs (
	id TEXT NOT NULL CONSTRAINT jobs_pkey PRIMARY KEY CONSTRAINT jobs_id_check CHECK (id <> ''),
	name TEXT NOT NULL CONSTRAINT jobs_name_check CHECK (name <> ''),
	description TEXT NOT NULL DEFAULT '',
	mode TEXT NOT NULL CONSTRAINT jobs_mode_check CHECK (mode IN ('file', 'block')),
	state TEXT NOT NULL CONSTRAINT jobs_state_check CHECK (state IN ('pending', 'prechecking', 'mirroring', 'syncing', 'paused', 'ready_for_cutover', 'test_cutover', 'cutting_over', 'cutover_complete', 'failed', 'cancelled', 'rolled_back')),
	state_reason TEXT NOT NULL DEFAULT '',
	source_host_id TEXT NOT NULL CONSTRAINT jobs_source_host_id_fkey REFERENCES hosts (id) ON DELETE RESTRICT,
	source_paths {{json}} NOT NULL,
	target_host_id TEXT NOT NULL CONSTRAINT jobs_target_host_id_fkey REFERENCES hosts (id) ON DELETE RESTRICT,
	target_path TEXT NOT NULL CONSTRAINT jobs_target_path_check CHECK (target_path LIKE '/%'),
	excludes {{json}} NOT NULL,
	system_profile BOOLEAN NOT NULL DEFAULT FALSE,
	checksum_mode TEXT NOT NULL CONSTRAINT jobs_checksum_mode_check CHECK (checksum_mode IN ('strict', 'time')),
	error_policy TEXT NOT NULL CONSTRAINT jobs_error_policy_check CHECK (error_policy IN ('stop', 'skip')),
	orphan_policy TEXT NOT NULL CONSTRAINT jobs_orphan_policy_check CHECK (orphan_policy IN ('keep', 'delete') OR orphan_policy LIKE 'move:/%'),
	compression TEXT NOT NULL CONSTRAINT jobs_compression_check CHECK (compression IN ('off', 'fast', 'balanced', 'normal', 'extreme')),
	encryption TEXT NOT NULL CONSTRAINT jobs_encryption_check CHECK (encryption IN ('none', 'aes', 'sm4')),
	encryption_key {{bytes}},
	bandwidth_schedule TEXT NOT NULL DEFAULT '',
	lag_threshold_ns BIGINT NOT NULL CONSTRAINT jobs_lag_threshold_ns_check CHECK (lag_threshold_ns >= 0),
	host_offline_grace_ns BIGINT NOT NULL CONSTRAINT jobs_host_offline_grace_ns_check CHECK (host_offline_grace_ns >= 0),
	cutover {{json}} NOT NULL,
	created_by_id BIGINT CONSTRAINT jobs_created_by_id_fkey REFERENCES users (id) ON DELETE SET NULL,
	version BIGINT NOT NULL DEFAULT 1,
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL,
	started_at {{ts}},
	finished_at {{ts}}
);
CREATE INDEX jobs_state_idx ON jobs (state);
CREATE INDEX jobs_source_host_id_idx ON jobs (source_host_id);
CREATE INDEX jobs_target_host_id_idx ON jobs (target_host_id);
CREATE INDEX jobs_created_at_idx ON jobs (created_at, id);

CREATE TABLE job_events (
	id {{pk}},
	job_id TEXT NOT NULL CONSTRAINT job_events_job_id_fkey REFERENCES jobs (id) ON DELETE CASCADE,
	"time" {{ts}} NOT NULL,
	type TEXT NOT NULL CONSTRAINT job_events_type_check CHECK (type <> ''),
	from_state TEXT NOT NULL DEFAULT '',
	to_state TEXT NOT NULL DEFAULT '',
	actor TEXT NOT NULL DEFAULT '',
	message TEXT NOT NULL DEFAULT '',
	details {{json}}
);
CREATE INDEX job_events_job_id_idx ON job_events (job_id, id);
CREATE INDEX job_events_time_idx ON job_events ("time");

CREATE TABLE audit_records (
	id BIGINT NOT NULL CONSTRAINT audit_records_pkey PRIMARY KEY CONSTRAINT audit_records_id_check CHECK (id > 0),
	"time" {{ts}} NOT NULL,
	actor_id BIGINT,
	actor TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL CONSTRAINT audit_records_action_check CHECK (action <> ''),
	target TEXT NOT NULL DEFAULT '',
	source_addr TEXT NOT NULL DEFAULT '',
	result TEXT NOT NULL CONSTRAINT audit_records_result_check CHECK (result IN ('success', 'failure', 'denied')),
	detail TEXT NOT NULL DEFAULT '',
	prev_hash TEXT NOT NULL CONSTRAINT audit_records_prev_hash_key UNIQUE,
	hash TEXT NOT NULL CONSTRAINT audit_records_hash_key UNIQUE
);
CREATE INDEX audit_records_time_idx ON audit_records ("time");
CREATE INDEX audit_records_actor_idx ON audit_records (actor);
CREATE INDEX audit_records_action_idx ON audit_records (action);

CREATE TABLE audit_head (
	id INTEGER NOT NULL CONSTRAINT audit_head_pkey PRIMARY KEY CONSTRAINT audit_head_id_check CHECK (id = 1),
	last_id BIGINT NOT NULL,
	last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, '');

CREATE TABLE alarm_rules (
	id {{pk}},
	name TEXT NOT NULL CONSTRAINT alarm_rules_name_key UNIQUE CONSTRAINT alarm_rules_name_check CHECK (name <> ''),
	kind TEXT NOT NULL CONSTRAINT alarm_rules_kind_check CHECK (kind IN ('job_failed', 'lag_above', 'host_offline', 'disk_above', 'stalled')),
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	threshold {{float}} NOT NULL DEFAULT 0,
	for_ns BIGINT NOT NULL DEFAULT 0 CONSTRAINT alarm_rules_for_ns_check CHECK (for_ns >= 0),
	job_id TEXT CONSTRAINT alarm_rules_job_id_fkey REFERENCES jobs (id) ON DELETE CASCADE,
	host_id TEXT CONSTRAINT alarm_rules_host_id_fkey REFERENCES hosts (id) ON DELETE CASCADE,
	severity TEXT NOT NULL CONSTRAINT alarm_rules_severity_check CHECK (severity IN ('info', 'warning', 'critical')),
	channels {{json}} NOT NULL,
	repeat_interval_ns BIGINT NOT NULL DEFAULT 0 CONSTRAINT alarm_rules_repeat_interval_ns_check CHECK (repeat_interval_ns >= 0),
	notify_recovery BOOLEAN NOT NULL DEFAULT FALSE,
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);

CREATE TABLE alarm_records (
	id {{pk}},
	rule_id BIGINT CONSTRAINT alarm_records_rule_id_fkey REFERENCES alarm_rules (id) ON DELETE SET NULL,
	rule_name TEXT NOT NULL DEFAULT '',
	kind TEXT NOT NULL CONSTRAINT alarm_records_kind_check CHECK (kind IN ('job_failed', 'lag_above', 'host_offline', 'disk_above', 'stalled')),
	severity TEXT NOT NULL CONSTRAINT alarm_records_severity_check CHECK (severity IN ('info', 'warning', 'critical')),
	subject TEXT NOT NULL CONSTRAINT alarm_records_subject_check CHECK (subject <> ''),
	state TEXT NOT NULL CONSTRAINT alarm_records_state_check CHECK (state IN ('firing', 'recovered')),
	value {{float}} NOT NULL DEFAULT 0,
	message TEXT NOT NULL DEFAULT '',
	fired_at {{ts}} NOT NULL,
	last_notified_at {{ts}},
	notify_count INTEGER NOT NULL DEFAULT 0,
	recovered_at {{ts}},
	acknowledged_at {{ts}},
	acknowledged_by TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alarm_records_firing_key ON alarm_records (rule_id, subject) WHERE state = 'firing';
CREATE INDEX alarm_records_fired_at_idx ON alarm_records (fired_at);

CREATE TABLE report_schedules (
	id {{pk}},
	name TEXT NOT NULL CONSTRAINT report_schedules_name_key UNIQUE CONSTRAINT report_schedules_name_check CHECK (name <> ''),
	items {{json}} NOT NULL,
	period TEXT NOT NULL CONSTRAINT report_schedules_period_check CHECK (period IN ('day', 'week', 'month')),
	cron TEXT NOT NULL CONSTRAINT report_schedules_cron_check CHECK (cron <> ''),
	time_zone TEXT NOT NULL DEFAULT '',
	format TEXT NOT NULL CONSTRAINT report_schedules_format_check CHECK (format IN ('csv', 'xlsx')),
	recipients {{json}} NOT NULL,
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	created_by_id BIGINT CONSTRAINT report_schedules_created_by_id_fkey REFERENCES users (id) ON DELETE SET NULL,
	last_run_at {{ts}},
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);

CREATE TABLE settings (
	"key" TEXT NOT NULL CONSTRAINT settings_pkey PRIMARY KEY CONSTRAINT settings_key_check CHECK ("key" <> ''),
	value {{json}} NOT NULL,
	updated_by_id BIGINT CONSTRAINT settings_updated_by_id_fkey REFERENCES users (id) ON DELETE SET NULL,
	updated_at {{ts}} NOT NULL
);
`

// The audit log is append-only in the database too: updates and deletes of
// audit_records are refused by triggers (an attacker with DDL rights can
// still drop them; the hash chain then shows what changed).
const schemaV1Postgres = `
CREATE FUNCTION ferry_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit records are append-only' USING ERRCODE = 'P0001', TABLE = 'audit_records'; END $$;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records FOR EACH ROW EXECUTE FUNCTION ferry_audit_append_only();
`

const schemaV1SQLite = `
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
`

const schemaV2 = `
CREATE TABLE metric_samples (
	id {{pk}},
	"time" {{ts}} NOT NULL,
	subject TEXT NOT NULL CONSTRAINT metric_samples_subject_check CHECK (subject <> ''),
	name TEXT NOT NULL CONSTRAINT metric_samples_name_check CHECK (name <> ''),
	value {{float}} NOT NULL
);
CREATE INDEX metric_samples_subject_name_time_idx ON metric_samples (subject, name, "time");
CREATE INDEX metric_samples_time_idx ON metric_samples ("time");
`

// schemaV3 adds the address (host:port) other agents reach a host's data
// channel on, as its agent advertises it.
const schemaV3 = `
ALTER TABLE hosts ADD COLUMN data_addr TEXT NOT NULL DEFAULT '' CONSTRAINT hosts_data_addr_check CHECK (length(data_addr) <= 256);
`
