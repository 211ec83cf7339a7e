package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

// Strings straight from URLs and bodies — NUL bytes, invalid UTF-8, a JSON
// \u0000 escape — come back as EINVALID, never as internal errors, on both
// engines.
func TestMalformedInputIsInvalidNotInternal(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		a, b := newHost(t, db, "a"), newHost(t, db, "b")
		j := newJob(a, b, "j")
		mustNoErr(t, db.CreateJob(ctx, j))
		for _, bad := range []string{"nul\x00byte", "bad\xffutf8"} {
			calls := map[string]func() error{
				"FindUserByName": func() error { _, err := db.FindUserByName(ctx, bad); return err },
				"FindRoleByName": func() error { _, err := db.FindRoleByName(ctx, bad); return err },
				"FindHostByID":   func() error { _, err := db.FindHostByID(ctx, bad); return err },
				"FindJobByID":    func() error { _, err := db.FindJobByID(ctx, bad); return err },
				"DeleteJob":      func() error { return db.DeleteJob(ctx, bad) },
				"Heartbeat":      func() error { return db.Heartbeat(ctx, bad, ferry.HostMetrics{}) },
				"FindSession":    func() error { _, err := db.FindSessionByHash(ctx, bad); return err },
				"FindAPIToken":   func() error { _, err := db.FindAPITokenByHash(ctx, bad); return err },
				"Enroll":         func() error { return db.Enroll(ctx, bad, &ferry.Host{Name: "x"}) },
				"GetSetting":     func() error { _, err := db.GetSetting(ctx, bad); return err },
				"ListJobs":       func() error { _, _, err := db.ListJobs(ctx, ferry.JobFilter{Query: bad}); return err },
				"ListUsers":      func() error { _, _, err := db.ListUsers(ctx, ferry.UserFilter{Query: bad}); return err },
				"ListHosts":      func() error { _, _, err := db.ListHosts(ctx, ferry.HostFilter{Query: bad}); return err },
				"ListAudit":      func() error { _, _, err := db.ListAudit(ctx, ferry.AuditFilter{Target: bad}); return err },
				"ListJobEvents": func() error {
					_, _, err := db.ListJobEvents(ctx, ferry.JobEventFilter{Types: []string{bad}})
					return err
				},
				"ListAlarms":  func() error { _, _, err := db.ListAlarmRecords(ctx, ferry.AlarmRecordFilter{Subject: bad}); return err },
				"SetJobState": func() error { _, err := db.SetJobState(ctx, j.ID, ferry.JobFailed, bad, "system"); return err },
				"AppendAudit": func() error {
					return db.AppendAudit(ctx, &ferry.AuditRecord{Action: "x", Result: ferry.AuditSuccess, Target: bad})
				},
				"CreateUser": func() error {
					u := newUser("eve")
					u.DisplayName = bad
					return db.CreateUser(ctx, u)
				},
				"UpdateJob": func() error {
					c := *j
					c.Excludes = []string{bad}
					return db.UpdateJob(ctx, &c)
				},
				"CreateHost": func() error { return db.CreateHost(ctx, &ferry.Host{Name: "h", Kernel: bad}) },
				"AppendJobEvent": func() error {
					return db.AppendJobEvent(ctx, &ferry.JobEvent{JobID: j.ID, Type: "x", Message: bad})
				},
			}
			for name, call := range calls {
				if code := ferry.ErrorCode(call()); code != ferry.EINVALID {
					t.Errorf("%s(%q): code %q, want EINVALID", name, bad, code)
				}
			}
		}
		// Postgres refuses \u0000 inside jsonb; the store says so clearly.
		err := db.PutSetting(ctx, &ferry.Setting{Key: "k", Value: json.RawMessage(`"a\u0000b"`)})
		if db.Engine() == store.Postgres {
			wantCode(t, err, ferry.EINVALID)
		} else {
			mustNoErr(t, err)
		}
		// Timestamps beyond what PostgreSQL stores are refused as invalid.
		u := newUser("zed")
		mustNoErr(t, db.CreateUser(ctx, u))
		err = db.CreateSession(ctx, &ferry.Session{UserID: u.ID, TokenHash: ferry.HashSecret("t"), ExpiresAt: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)})
		wantCode(t, err, ferry.EINVALID)
		_, _, err = db.ListAudit(ctx, ferry.AuditFilter{Since: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)})
		wantCode(t, err, ferry.EINVALID)
	})
}
