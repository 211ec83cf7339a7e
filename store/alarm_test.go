package store_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func TestAlarms(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		a, b := newHost(t, db, "a"), newHost(t, db, "b")
		j := newJob(a, b, "j")
		mustNoErr(t, db.CreateJob(ctx, j))
		rule := &ferry.AlarmRule{
			Name: "lag", Kind: ferry.AlarmLagAbove, Enabled: true, Threshold: 30, JobID: j.ID,
			Severity: ferry.SeverityWarning, RepeatInterval: 10 * time.Minute, NotifyRecovery: true,
			Channels: []ferry.AlarmChannel{{Type: ferry.ChannelEmail, Target: "ops@example.test"}, {Type: ferry.ChannelWebhook, Target: "https://hooks.example.test/x"}},
		}
		mustNoErr(t, db.CreateAlarmRule(ctx, rule))
		got, err := db.FindAlarmRuleByID(ctx, rule.ID)
		mustNoErr(t, err)
		if got.JobID != j.ID || !slices.Equal(got.Channels, rule.Channels) || got.RepeatInterval != 10*time.Minute {
			t.Fatalf("rule round trip %+v", got)
		}
		wantCode(t, db.CreateAlarmRule(ctx, &ferry.AlarmRule{Name: "lag", Kind: ferry.AlarmJobFailed, Severity: ferry.SeverityCritical}), ferry.ECONFLICT)
		fe := wantCode(t, db.CreateAlarmRule(ctx, &ferry.AlarmRule{Name: "ghost", Kind: ferry.AlarmHostOffline, Severity: ferry.SeverityCritical, HostID: "nohost"}), ferry.EINVALID)
		wantField(t, fe, "hostId")
		disabled := &ferry.AlarmRule{Name: "disk", Kind: ferry.AlarmDiskAbove, Threshold: 90, Severity: ferry.SeverityCritical}
		mustNoErr(t, db.CreateAlarmRule(ctx, disabled))
		enabled, err := db.ListAlarmRules(ctx, true)
		mustNoErr(t, err)
		if len(enabled) != 1 || enabled[0].Name != "lag" {
			t.Fatalf("enabled rules %+v", enabled)
		}
		disabled.Enabled = true
		mustNoErr(t, db.UpdateAlarmRule(ctx, disabled))
		all, err := db.ListAlarmRules(ctx, true)
		mustNoErr(t, err)
		if len(all) != 2 {
			t.Fatalf("after enabling: %d rules", len(all))
		}

		subject := "job:" + j.ID
		rec := &ferry.AlarmRecord{RuleID: rule.ID, RuleName: rule.Name, Kind: rule.Kind, Severity: rule.Severity, Subject: subject, Value: 45, Message: "lag 45s"}
		mustNoErr(t, db.FireAlarm(ctx, rec))
		dup := *rec
		dup.ID = 0
		fe = wantCode(t, db.FireAlarm(ctx, &dup), ferry.ECONFLICT)
		wantField(t, fe, "subject")
		firing, err := db.FindFiringAlarm(ctx, rule.ID, subject)
		mustNoErr(t, err)
		if firing.ID != rec.ID || firing.State != ferry.AlarmFiring {
			t.Fatalf("firing %+v", firing)
		}
		clk.advance(10 * time.Minute)
		mustNoErr(t, db.AlarmNotified(ctx, rec.ID))
		mustNoErr(t, db.AlarmNotified(ctx, rec.ID))
		mustNoErr(t, db.AcknowledgeAlarm(ctx, rec.ID, "alice"))
		clk.advance(time.Minute)
		mustNoErr(t, db.AcknowledgeAlarm(ctx, rec.ID, "bob"))
		mustNoErr(t, db.RecoverAlarm(ctx, rec.ID))
		wantCode(t, db.RecoverAlarm(ctx, rec.ID), ferry.ENOTFOUND)
		_, err = db.FindFiringAlarm(ctx, rule.ID, subject)
		wantCode(t, err, ferry.ENOTFOUND)
		done, err := db.FindAlarmRecordByID(ctx, rec.ID)
		mustNoErr(t, err)
		if done.NotifyCount != 2 || done.AcknowledgedBy != "alice" || done.RecoveredAt.IsZero() || done.State != ferry.AlarmRecovered {
			t.Fatalf("record after lifecycle %+v", done)
		}
		// Once recovered, the rule may fire again for the subject.
		again := *rec
		again.ID, again.State, again.FiredAt = 0, "", time.Time{}
		mustNoErr(t, db.FireAlarm(ctx, &again))

		no := false
		recs, n, err := db.ListAlarmRecords(ctx, ferry.AlarmRecordFilter{Acknowledged: &no})
		mustNoErr(t, err)
		if n != 1 || recs[0].ID != again.ID {
			t.Fatalf("unacknowledged %d %+v", n, recs)
		}
		_, n, err = db.ListAlarmRecords(ctx, ferry.AlarmRecordFilter{RuleID: rule.ID})
		mustNoErr(t, err)
		if n != 2 {
			t.Fatalf("records of rule %d", n)
		}
		mustNoErr(t, db.DeleteAlarmRule(ctx, rule.ID))
		kept, err := db.FindAlarmRecordByID(ctx, rec.ID)
		mustNoErr(t, err)
		if kept.RuleID != 0 || kept.RuleName != "lag" {
			t.Fatalf("record after rule deletion %+v", kept)
		}
	})
}

func TestReportSchedules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		r := &ferry.ReportSchedule{Name: "weekly", Items: []string{"jobs", "transfer"}, Period: ferry.PeriodWeek, Cron: "0 7 * * 1", TimeZone: "Europe/Paris", Format: ferry.ReportXLSX, Recipients: []string{"boss@example.test"}, Enabled: true}
		mustNoErr(t, db.CreateReportSchedule(ctx, r))
		got, err := db.FindReportScheduleByID(ctx, r.ID)
		mustNoErr(t, err)
		if !slices.Equal(got.Items, r.Items) || got.TimeZone != "Europe/Paris" || !got.LastRunAt.IsZero() {
			t.Fatalf("round trip %+v", got)
		}
		mustNoErr(t, db.MarkReportRun(ctx, r.ID))
		got.Format = ferry.ReportCSV
		mustNoErr(t, db.UpdateReportSchedule(ctx, got))
		got, err = db.FindReportScheduleByID(ctx, r.ID)
		mustNoErr(t, err)
		if got.Format != ferry.ReportCSV || got.LastRunAt.IsZero() {
			t.Fatalf("after update %+v", got)
		}
		fe := wantCode(t, db.CreateReportSchedule(ctx, &ferry.ReportSchedule{Name: "bad", Items: []string{"jobs"}, Period: "year", Cron: "every day", Format: "pdf", Recipients: []string{"x"}}), ferry.EINVALID)
		for _, f := range []string{"period", "cron", "format", "recipients[0]"} {
			wantField(t, fe, f)
		}
		wantCode(t, db.CreateReportSchedule(ctx, &ferry.ReportSchedule{Name: "weekly", Items: []string{"jobs"}, Period: ferry.PeriodDay, Cron: "@daily", Format: ferry.ReportCSV, Recipients: []string{"a@b.c"}}), ferry.ECONFLICT)
		list, err := db.ListReportSchedules(ctx)
		mustNoErr(t, err)
		if len(list) != 1 {
			t.Fatalf("list %d", len(list))
		}
		mustNoErr(t, db.DeleteReportSchedule(ctx, r.ID))
		wantCode(t, db.DeleteReportSchedule(ctx, r.ID), ferry.ENOTFOUND)
	})
}

func TestSettings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		_, err := db.GetSetting(ctx, "smtp")
		wantCode(t, err, ferry.ENOTFOUND)
		type smtp struct {
			Host string `json:"host"`
			Port int    `json:"port"`
		}
		mustNoErr(t, db.PutSetting(ctx, &ferry.Setting{Key: "smtp", Value: json.RawMessage(`{"host":"mail","port":25}`)}))
		mustNoErr(t, db.PutSetting(ctx, &ferry.Setting{Key: "smtp", Value: json.RawMessage(`{"host":"relay","port":587}`)}))
		mustNoErr(t, db.PutSetting(ctx, &ferry.Setting{Key: "audit.retention-days", Value: json.RawMessage(`365`)}))
		var got smtp
		ok, err := db.GetSettingInto(ctx, "smtp", &got)
		mustNoErr(t, err)
		if !ok || got != (smtp{"relay", 587}) {
			t.Fatalf("smtp = %v %+v", ok, got)
		}
		ok, err = db.GetSettingInto(ctx, "missing", &got)
		mustNoErr(t, err)
		if ok {
			t.Fatal("missing setting reported as set")
		}
		list, err := db.ListSettings(ctx)
		mustNoErr(t, err)
		if len(list) != 2 || list[0].Key != "audit.retention-days" {
			t.Fatalf("list %+v", list)
		}
		wantCode(t, db.PutSetting(ctx, &ferry.Setting{Key: "Bad Key", Value: json.RawMessage(`1`)}), ferry.EINVALID)
		wantCode(t, db.PutSetting(ctx, &ferry.Setting{Key: "k", Value: json.RawMessage(`{nope`)}), ferry.EINVALID)
		fe := wantCode(t, db.PutSetting(ctx, &ferry.Setting{Key: "k", Value: json.RawMessage(`1`), UpdatedByID: 4242}), ferry.EINVALID)
		wantField(t, fe, "updatedById")
		mustNoErr(t, db.DeleteSetting(ctx, "smtp"))
		wantCode(t, db.DeleteSetting(ctx, "smtp"), ferry.ENOTFOUND)
	})
}
