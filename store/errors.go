package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferry-migrate/ferry"
	"github.com/lib/pq"
	"github.com/uptrace/bun"
	"modernc.org/sqlite"
)

// entities names the row of each table in messages.
var entities = map[string]string{
	"users":             "user",
	"roles":             "role",
	"permissions":       "permission",
	"user_roles":        "role assignment",
	"role_permissions":  "permission grant",
	"sessions":          "session",
	"api_tokens":        "API token",
	"hosts":             "host",
	"enrollment_tokens": "enrollment token",
	"jobs":              "job",
	"job_events":        "job event",
	"audit_records":     "audit record",
	"alarm_rules":       "alarm rule",
	"alarm_records":     "alarm record",
	"report_schedules":  "report schedule",
	"settings":          "setting",
	"metric_samples":    "metric sample",
}

// foreignKeys lists each table's references, column → referenced table.
// SQLite does not say which reference failed; with it the message can.
var foreignKeys = map[string]map[string]string{
	"user_roles":        {"user_id": "users", "role_id": "roles"},
	"role_permissions":  {"role_id": "roles", "permission_id": "permissions"},
	"sessions":          {"user_id": "users"},
	"api_tokens":        {"user_id": "users"},
	"enrollment_tokens": {"created_by_id": "users", "host_id": "hosts"},
	"jobs":              {"source_host_id": "hosts", "target_host_id": "hosts", "created_by_id": "users"},
	"job_events":        {"job_id": "jobs"},
	"alarm_rules":       {"job_id": "jobs", "host_id": "hosts"},
	"alarm_records":     {"rule_id": "alarm_rules"},
	"report_schedules":  {"created_by_id": "users"},
	"settings":          {"updated_by_id": "users"},
}

func entity(table string) string {
	if e, ok := entities[table]; ok {
		return e
	}
	return strings.TrimSuffix(table, "s")
}

// article prefixes a noun with "a" or "an".
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiouAEIOU", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// fieldName turns a column name into the JSON field name of the domain
// type: source_host_id → sourceHostId.
func fieldName(column string) string {
	column = strings.TrimSuffix(column, "_ns")
	parts := strings.Split(column, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// op is the kind of statement whose error is translated.
type op int

const (
	opWrite  op = iota // insert or update
	opDelete           // delete: a foreign key failure means "still in use"
)

var (
	pqKeyRE       = regexp.MustCompile(`^Key \(([^)]*)\)=`)
	sqliteTailRE  = regexp.MustCompile(` \(\d+\)$`)
	sqliteCodeMsg = regexp.MustCompile(`^[^:]*: `)
)

// translate turns a driver error from a statement on table into a
// *ferry.Error when it is a constraint violation, and wraps anything else
// with what failed. ferry errors pass through unchanged.
func translate(err error, table string, o op, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*ferry.Error](err); ok {
		return err
	}
	if pqErr, ok := errors.AsType[*pq.Error](err); ok {
		if fe := fromPostgres(pqErr, table, o); fe != nil {
			return fe
		}
	}
	if sqErr, ok := errors.AsType[*sqlite.Error](err); ok {
		if fe := fromSQLite(sqErr, table, o); fe != nil {
			return fe
		}
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

func fromPostgres(e *pq.Error, table string, o op) *ferry.Error {
	if e.Table != "" && o == opWrite {
		table = e.Table
	}
	switch e.Code {
	case "23505": // unique_violation
		cols := e.Column
		if m := pqKeyRE.FindStringSubmatch(e.Detail); m != nil {
			cols = m[1]
		}
		if cols == "" {
			cols = e.Constraint
		}
		return uniqueError(table, splitCols(cols))
	case "23503": // foreign_key_violation
		if strings.HasPrefix(e.Message, "update or delete") {
			return inUseError(table, e.Table)
		}
		col := ""
		if m := pqKeyRE.FindStringSubmatch(e.Detail); m != nil {
			col = m[1]
		}
		return missingRefError(table, []string{col})
	case "23514": // check_violation
		return checkError(table, e.Constraint)
	case "23502": // not_null_violation
		return requiredError(table, e.Column)
	case "22001": // string_data_right_truncation
		return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("%s: a value is too long", entity(table))}
	case "22021", "22P05": // invalid UTF-8; \u0000 in jsonb
		return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("%s: a value contains characters that cannot be stored", entity(table))}
	case "22P02", "22007", "22008", "22003": // invalid text, datetime or numeric value
		return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("%s: a value has the wrong format: %s", entity(table), e.Message)}
	case "P0001": // raised by a trigger
		return &ferry.Error{Code: ferry.EFORBIDDEN, Message: e.Message}
	}
	return nil
}

// SQLite primary and extended result codes used below.
const (
	sqliteConstraint        = 19
	sqliteConstraintTrigger = 1811
)

func fromSQLite(e *sqlite.Error, table string, o op) *ferry.Error {
	if e.Code()&0xff != sqliteConstraint {
		return nil
	}
	// "constraint failed: UNIQUE constraint failed: users.username (2067)"
	msg := sqliteTailRE.ReplaceAllString(e.Error(), "")
	msg = sqliteCodeMsg.ReplaceAllString(msg, "")
	kind, detail, _ := strings.Cut(msg, " constraint failed")
	detail = strings.TrimPrefix(detail, ": ")
	switch kind {
	case "UNIQUE", "PRIMARY KEY":
		return uniqueError(table, splitCols(detail))
	case "FOREIGN KEY":
		if o == opDelete {
			return inUseError(table, "")
		}
		var cols []string
		for c := range foreignKeys[table] {
			cols = append(cols, c)
		}
		return missingRefError(table, cols)
	case "CHECK":
		return checkError(table, detail)
	case "NOT NULL":
		return requiredError(table, detail)
	}
	if e.Code() == sqliteConstraintTrigger { // RAISE(ABORT, …) in a trigger
		return &ferry.Error{Code: ferry.EFORBIDDEN, Message: msg}
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("%s: %s", entity(table), msg)}
}

// splitCols splits "users.username, users.email" or "rule_id, subject" into
// bare column names.
func splitCols(s string) []string {
	var cols []string
	for c := range strings.SplitSeq(s, ",") {
		c = strings.TrimSpace(c)
		if _, col, ok := strings.Cut(c, "."); ok {
			c = col
		}
		if c != "" {
			cols = append(cols, c)
		}
	}
	return cols
}

func uniqueError(table string, cols []string) *ferry.Error {
	fe := &ferry.Error{Code: ferry.ECONFLICT}
	for _, c := range cols {
		fe.Fields = append(fe.Fields, ferry.FieldError{Field: fieldName(c), Message: "already exists"})
	}
	fe.Message = fmt.Sprintf("%s with this %s already exists (%s.%s)",
		article(entity(table)), strings.Join(cols, " and "), table, strings.Join(cols, ", "))
	return fe
}

func missingRefError(table string, cols []string) *ferry.Error {
	fe := &ferry.Error{Code: ferry.EINVALID}
	slices.Sort(cols)
	switch len(cols) {
	case 0:
		fe.Message = fmt.Sprintf("%s refers to a record that does not exist", article(entity(table)))
	case 1:
		ref := entity(foreignKeys[table][cols[0]])
		fe.Message = fmt.Sprintf("%s.%s refers to %s that does not exist", table, cols[0], article(ref))
		fe.Fields = []ferry.FieldError{{Field: fieldName(cols[0]), Message: ref + " does not exist"}}
	default:
		fe.Message = fmt.Sprintf("%s: one of %s refers to a record that does not exist", table, strings.Join(cols, ", "))
		for _, c := range cols {
			fe.Fields = append(fe.Fields, ferry.FieldError{Field: fieldName(c), Message: "may refer to a record that does not exist"})
		}
	}
	return fe
}

func inUseError(table, byTable string) *ferry.Error {
	msg := fmt.Sprintf("the %s is still in use", entity(table))
	if byTable != "" && byTable != table {
		msg = fmt.Sprintf("the %s is still in use by %s", entity(table), strings.ReplaceAll(byTable, "_", " "))
	}
	return &ferry.Error{Code: ferry.ECONFLICT, Message: msg}
}

// checkError names the column from a constraint called <table>_<column>_check.
func checkError(table, constraint string) *ferry.Error {
	col := strings.TrimSuffix(strings.TrimPrefix(constraint, table+"_"), "_check")
	return &ferry.Error{
		Code:    ferry.EINVALID,
		Message: fmt.Sprintf("%s.%s has a value that is not allowed (constraint %s)", table, col, constraint),
		Fields:  []ferry.FieldError{{Field: fieldName(col), Message: "value not allowed"}},
	}
}

func requiredError(table, col string) *ferry.Error {
	if t, c, ok := strings.Cut(col, "."); ok {
		table, col = t, c
	}
	return &ferry.Error{
		Code:    ferry.EINVALID,
		Message: fmt.Sprintf("%s.%s is required", table, col),
		Fields:  []ferry.FieldError{{Field: fieldName(col), Message: "is required"}},
	}
}

// notFound maps sql.ErrNoRows to ENOTFOUND with msg and wraps anything else.
func notFound(err error, what string, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ferry.Errorf(ferry.ENOTFOUND, format, args...)
	}
	return translate(err, "", opWrite, what)
}

// translateRefs is translate for writes to tables with several references:
// on SQLite, whose foreign key errors do not name the column, it looks up
// each referenced row (refs maps column → value; zero values are skipped)
// to name the one that is missing. idb must be the connection or
// transaction the failed statement ran on.
func (db *DB) translateRefs(ctx context.Context, idb bun.IDB, err error, table string, refs map[string]any, what string) error {
	sqErr, ok := errors.AsType[*sqlite.Error](err)
	if !ok || !strings.Contains(sqErr.Error(), "FOREIGN KEY constraint failed") {
		return translate(err, table, opWrite, what)
	}
	cols := make([]string, 0, len(refs))
	for c := range refs {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, col := range cols {
		v := refs[col]
		if v == nil || v == "" || v == int64(0) {
			continue
		}
		exists, qerr := idb.NewSelect().Table(foreignKeys[table][col]).Where("id = ?", v).Exists(ctx)
		if qerr == nil && !exists {
			return missingRefError(table, []string{col})
		}
	}
	return translate(err, table, opWrite, what)
}

// checkText returns EINVALID naming the first of the field/value pairs
// whose value is not storable text (invalid UTF-8 or NUL bytes). Lookups
// and filters take such values straight from URLs; without this check they
// would reach the database as malformed queries and come back as internal
// errors.
func checkText(fieldValues ...string) error {
	for i := 0; i+1 < len(fieldValues); i += 2 {
		field, v := fieldValues[i], fieldValues[i+1]
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return &ferry.Error{
				Code:    ferry.EINVALID,
				Message: fmt.Sprintf("%s must be valid UTF-8 without NUL characters", field),
				Fields:  []ferry.FieldError{{Field: field, Message: "must be valid UTF-8 without NUL characters"}},
			}
		}
	}
	return nil
}

// checkTimes returns EINVALID naming the first of the field/time pairs
// outside the range the store keeps (see ferry.ValidTime).
func checkTimes(fieldTimes ...any) error {
	for i := 0; i+1 < len(fieldTimes); i += 2 {
		field, t := fieldTimes[i].(string), fieldTimes[i+1].(time.Time)
		if !ferry.ValidTime(t) {
			return &ferry.Error{
				Code:    ferry.EINVALID,
				Message: fmt.Sprintf("%s must be between the years 1970 and 9999", field),
				Fields:  []ferry.FieldError{{Field: field, Message: "must be between the years 1970 and 9999"}},
			}
		}
	}
	return nil
}

// pairs returns field/value pairs for checkText, one per element of vs.
func pairs(field string, vs []string) []string {
	out := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		out = append(out, field, v)
	}
	return out
}
