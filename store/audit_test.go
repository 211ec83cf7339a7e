package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

// appendAudit appends n records: actors alice/bob alternate, every third
// one denied.
func appendAudit(t *testing.T, db *store.DB, clk *clock, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		clk.advance(time.Minute)
		r := &ferry.AuditRecord{Actor: "alice", ActorID: 1, Action: "jobs.create", Target: fmt.Sprintf("job:%d", i), SourceAddr: "192.0.2.7:5123", Result: ferry.AuditSuccess}
		if i%2 == 0 {
			r.Actor, r.ActorID, r.Action = "bob", 2, "auth.login"
		}
		if i%3 == 0 {
			r.Result = ferry.AuditDenied
		}
		mustNoErr(t, db.AppendAudit(ctx, r))
		if r.ID != int64(i) || r.Hash == "" || (i == 1) != (r.PrevHash == "") {
			t.Fatalf("record %d: id %d prev %q hash %q", i, r.ID, r.PrevHash, r.Hash)
		}
	}
}

// tamper runs raw SQL with the append-only triggers out of the way, as an
// intruder with database access would.
func tamper(t *testing.T, db *store.DB, query string, args ...any) {
	t.Helper()
	b := db.Bun()
	if db.Engine() == store.Postgres {
		_, err := b.ExecContext(ctx, "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
		mustNoErr(t, err)
	} else {
		for _, trg := range []string{"audit_records_no_update", "audit_records_no_delete"} {
			_, err := b.ExecContext(ctx, "DROP TRIGGER "+trg)
			mustNoErr(t, err)
		}
	}
	_, err := b.ExecContext(ctx, query, args...)
	mustNoErr(t, err)
}

func TestAuditChain(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		appendAudit(t, db, clk, 12)
		v, err := db.VerifyAuditChain(ctx)
		mustNoErr(t, err)
		if !v.Valid || v.Checked != 12 {
			t.Fatalf("fresh chain: %+v", v)
		}

		recs, n, err := db.ListAudit(ctx, ferry.AuditFilter{Actor: "bob"})
		mustNoErr(t, err)
		if n != 6 || recs[0].ID != 12 {
			t.Fatalf("bob: %d, first %d", n, recs[0].ID)
		}
		_, n, err = db.ListAudit(ctx, ferry.AuditFilter{Action: "jobs.", Result: ferry.AuditDenied})
		mustNoErr(t, err)
		if n != 2 { // 3 and 9
			t.Fatalf("denied jobs.*: %d", n)
		}
		since := newClock().t.Add(5 * time.Minute)
		recs, n, err = db.ListAudit(ctx, ferry.AuditFilter{Since: since, Until: since.Add(3 * time.Minute), Ascending: true})
		mustNoErr(t, err)
		if n != 3 || recs[0].ID != 5 || recs[2].ID != 7 {
			t.Fatalf("window: %d records from %d", n, recs[0].ID)
		}
		if !recs[0].Time.Equal(since) || recs[0].SourceAddr != "192.0.2.7:5123" {
			t.Fatalf("record 5 = %+v", recs[0])
		}

		// The database itself refuses edits and deletes.
		_, err = db.Bun().ExecContext(ctx, "UPDATE audit_records SET result = 'success' WHERE id = 3")
		wantCode(t, store.Translate(err, "audit_records"), ferry.EFORBIDDEN)
		_, err = db.Bun().ExecContext(ctx, "DELETE FROM audit_records WHERE id = 3")
		wantCode(t, store.Translate(err, "audit_records"), ferry.EFORBIDDEN)
	})
}

func TestAuditChainDetectsTampering(t *testing.T) {
	cases := []struct {
		name     string
		tamper   func(t *testing.T, db *store.DB)
		brokenID int64
		reason   string
	}{
		{"edited record", func(t *testing.T, db *store.DB) {
			tamper(t, db, "UPDATE audit_records SET result = 'success' WHERE id = 6")
		}, 6, "altered"},
		{"edited and rehashed record", func(t *testing.T, db *store.DB) {
			var r ferry.AuditRecord
			mustNoErr(t, db.Bun().NewSelect().Model(&r).Where("id = 6").Scan(ctx))
			r.Actor = "mallory"
			tamper(t, db, "UPDATE audit_records SET actor = ?, hash = ? WHERE id = 6", r.Actor, r.ComputeHash(r.PrevHash))
		}, 7, "does not link"},
		{"deleted record", func(t *testing.T, db *store.DB) {
			tamper(t, db, "DELETE FROM audit_records WHERE id = 4")
		}, 5, "missing"},
		{"deleted newest records", func(t *testing.T, db *store.DB) {
			tamper(t, db, "DELETE FROM audit_records WHERE id >= 9")
		}, 9, "missing at the end"},
		{"deleted first record", func(t *testing.T, db *store.DB) {
			tamper(t, db, "DELETE FROM audit_records WHERE id = 1")
		}, 2, "missing"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, db *store.DB) {
				appendAudit(t, db, newClock(), 10)
				c.tamper(t, db)
				v, err := db.VerifyAuditChain(ctx)
				mustNoErr(t, err)
				if v.Valid || v.FirstBrokenID != c.brokenID || !strings.Contains(v.Reason, c.reason) {
					t.Fatalf("verify = %+v, want broken at %d (%s)", v, c.brokenID, c.reason)
				}
				t.Logf("%s: %s", c.name, v.Reason)
			})
		})
	}
}
