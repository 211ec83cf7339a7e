package apiserver

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
)

// TestDeniedAttemptsAudited is the must-show: an auditor creating a
// job and a sysadmin starting one answer 403 and leave audit records.
func TestDeniedAttemptsAudited(t *testing.T) {
	e := newEnv(t)
	job := e.createJob("web")
	r := e.expect(e.do("POST", "/api/v1/jobs", e.token["auditor"], map[string]any{"name": "x", "sourceHostId": job.SourceHostID,
		"sourcePaths": []string{"/a"}, "targetHostId": job.TargetHostID, "targetPath": "/b"}), http.StatusForbidden)
	problemOf(t, r)
	e.expect(e.do("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["sysadmin"], nil), http.StatusForbidden)
	// An operator reading the log is a denied read, audited as well.
	e.expect(e.do("GET", "/api/v1/audit", e.token["operator"], nil), http.StatusForbidden)

	var page AuditListOutput
	decode(t, e.expect(e.do("GET", "/api/v1/audit?result=denied", e.token["auditor"], nil), http.StatusOK), &page.Body)
	got := map[string]*ferry.AuditRecord{}
	for _, rec := range page.Body.Items {
		got[rec.Actor+" "+rec.Action] = rec
	}
	for _, want := range []struct{ key, target string }{
		{"auditor create-job", "jobs"},
		{"sysadmin start-job", "jobs:" + job.ID},
		{"operator list-audit", "audit"},
	} {
		rec := got[want.key]
		if rec == nil {
			t.Errorf("no denied audit record for %q in %+v", want.key, page.Body.Items)
			continue
		}
		if rec.Target != want.target || rec.SourceAddr != "127.0.0.1" || !strings.Contains(rec.Detail, "403") || rec.Time.IsZero() {
			t.Errorf("%s: record %+v", want.key, rec)
		}
	}
	if len(page.Body.Items) != 3 || page.Body.Total != 3 {
		t.Errorf("denied records: %d items, total %d; want 3", len(page.Body.Items), page.Body.Total)
	}
}

func TestAuditMutationsAndChain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	job := e.createJob("db")
	e.expect(e.do("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["operator"], nil), http.StatusOK)
	e.expect(e.do("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["operator"], nil), http.StatusConflict)
	e.expect(e.do("PATCH", "/api/v1/jobs/"+job.ID, e.token["admin"], map[string]any{"compression": "fast"}), http.StatusOK)

	recs, _, err := e.db.ListAudit(ctx, ferry.AuditFilter{Target: "jobs:" + job.ID, Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, r := range recs {
		seq = append(seq, r.Actor+" "+r.Action+" "+r.Result)
	}
	want := []string{"admin create-job success", "operator start-job success", "operator start-job failure", "admin update-job success"}
	if strings.Join(seq, ", ") != strings.Join(want, ", ") {
		t.Errorf("job audit trail:\n got %v\nwant %v", seq, want)
	}
	// Reads are not audited.
	n0 := auditCount(t, e)
	e.expect(e.do("GET", "/api/v1/jobs", e.token["admin"], nil), http.StatusOK)
	if n := auditCount(t, e); n != n0 {
		t.Errorf("a read added %d audit records", n-n0)
	}

	var v VerifyAuditOutput
	decode(t, e.expect(e.do("GET", "/api/v1/audit/verify", e.token["auditor"], nil), http.StatusOK), &v.Body)
	if !v.Body.Valid || v.Body.Checked < 10 {
		t.Fatalf("verify of an untouched log: %+v", v.Body)
	}
	// Someone with DDL rights drops the append-only triggers and edits a
	// record: verify names it.
	victim := recs[1].ID
	for _, q := range []string{"DROP TRIGGER audit_records_no_update", "UPDATE audit_records SET actor = 'admin' WHERE id = ?"} {
		if _, err := e.db.Bun().ExecContext(ctx, q, victim); err != nil {
			t.Fatal(err)
		}
	}
	decode(t, e.expect(e.do("GET", "/api/v1/audit/verify", e.token["auditor"], nil), http.StatusOK), &v.Body)
	if v.Body.Valid || v.Body.FirstBrokenID != victim || v.Body.Reason == "" {
		t.Fatalf("verify after editing record %d: %+v", victim, v.Body)
	}
}

func auditCount(t *testing.T, e *testEnv) int {
	t.Helper()
	_, n, err := e.db.ListAudit(context.Background(), ferry.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuditExportCSV(t *testing.T) {
	e := newEnv(t)
	// A name that a spreadsheet would run as a formula.
	e.login("=cmd|' /C calc'!A0", "whatever-Passw0rd", http.StatusUnauthorized)
	r := e.expect(e.do("GET", "/api/v1/audit/export", e.token["auditor"], nil), http.StatusOK)
	if ct := r.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(r.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(auditCSVHeader, ",") {
		t.Fatalf("header %v", rows[0])
	}
	if got, want := len(rows)-1, auditCount(t, e); got != want {
		t.Fatalf("%d CSV records, %d audit records", got, want)
	}
	if rows[1][0] != "1" {
		t.Errorf("export does not start at the oldest record: %v", rows[1])
	}
	last := rows[len(rows)-1]
	if last[3] != "'=cmd|' /C calc'!A0" || last[4] != "login" || last[7] != ferry.AuditFailure {
		t.Errorf("last row %v", last)
	}
	// Filters apply to the export too.
	r = e.expect(e.do("GET", "/api/v1/audit/export?action=change-password", e.token["auditor"], nil), http.StatusOK)
	rows, _ = csv.NewReader(strings.NewReader(r.Body.String())).ReadAll()
	if len(rows) != 5 {
		t.Errorf("change-password export: %d rows, want header + 4", len(rows))
	}
}
