package ferry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
)

func validJob() *ferry.Job {
	j := &ferry.Job{Name: "web", SourceHostID: "h1", SourcePaths: []string{"/srv"}, TargetHostID: "h2", TargetPath: "/srv"}
	j.ApplyDefaults()
	return j
}

func TestJobDefaultsValidate(t *testing.T) {
	j := validJob()
	if err := j.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if j.State != ferry.JobPending || j.ChecksumMode != ferry.ChecksumTime || j.OrphanPolicy != ferry.OrphanKeep || j.LagThreshold != ferry.DefaultLagThreshold {
		t.Fatalf("defaults: %+v", j)
	}
}

func TestJobValidateFields(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(j *ferry.Job)
	}{
		{"name", func(j *ferry.Job) { j.Name = "" }},
		{"mode", func(j *ferry.Job) { j.Mode = "disk" }},
		{"state", func(j *ferry.Job) { j.State = "running" }},
		{"sourceHostId", func(j *ferry.Job) { j.SourceHostID = "" }},
		{"sourcePaths", func(j *ferry.Job) { j.SourcePaths = nil }},
		{"sourcePaths[0]", func(j *ferry.Job) { j.SourcePaths = []string{"/srv/../etc"} }},
		{"sourcePaths[1]", func(j *ferry.Job) { j.SourcePaths = []string{"/a", "/a"} }},
		{"sourcePaths", func(j *ferry.Job) { j.Mode = ferry.JobModeBlock; j.SourcePaths = []string{"/dev/sda", "/dev/sdb"} }},
		{"targetPath", func(j *ferry.Job) { j.TargetPath = "srv" }},
		{"targetPath", func(j *ferry.Job) { j.TargetPath = "/srv/" }},
		{"excludes[1]", func(j *ferry.Job) { j.Excludes = []string{"*.tmp", ""} }},
		{"checksumMode", func(j *ferry.Job) { j.ChecksumMode = "md5" }},
		{"errorPolicy", func(j *ferry.Job) { j.ErrorPolicy = "ignore" }},
		{"orphanPolicy", func(j *ferry.Job) { j.OrphanPolicy = "trash" }},
		{"orphanPolicy", func(j *ferry.Job) { j.OrphanPolicy = "move:relative" }},
		{"orphanPolicy", func(j *ferry.Job) { j.OrphanPolicy = ferry.OrphanMoveTo("/srv/old") }},
		{"compression", func(j *ferry.Job) { j.Compression = "max" }},
		{"encryption", func(j *ferry.Job) { j.Encryption = "des" }},
		{"encryptionKey", func(j *ferry.Job) { j.Encryption = ferry.EncryptionAES; j.EncryptionKey = make([]byte, 15) }},
		{"name", func(j *ferry.Job) { j.Name = "bad\x00name" }},
		{"description", func(j *ferry.Job) { j.Description = "bad \xff utf-8" }},
		{"targetPath", func(j *ferry.Job) { j.TargetPath = "/srv/\xff" }},
		{"encryptionKey", func(j *ferry.Job) { j.EncryptionKey = make([]byte, 16) }},
		{"lagThreshold", func(j *ferry.Job) { j.LagThreshold = -time.Second }},
		{"hostOfflineGrace", func(j *ferry.Job) { j.HostOfflineGrace = -time.Second }},
		{"cutover.preCutoverHook.timeout", func(j *ferry.Job) { j.Cutover.PreCutoverHook = ferry.Hook{Command: "x", Timeout: -1} }},
		{"cutover.postCutoverActions[0].command", func(j *ferry.Job) { j.Cutover.PostCutoverActions = []ferry.CutoverAction{{Name: "a"}} }},
	}
	for _, c := range cases {
		j := validJob()
		c.mutate(j)
		err := j.Validate()
		if ferry.ErrorCode(err) != ferry.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", c.field, err)
			continue
		}
		found := false
		for _, f := range ferry.ErrorFields(err) {
			found = found || f.Field == c.field
		}
		if !found {
			t.Errorf("%s: fields %+v do not name it", c.field, ferry.ErrorFields(err))
		}
	}
	j := validJob()
	j.OrphanPolicy = ferry.OrphanMoveTo("/var/orphans")
	j.Mode = ferry.JobModeBlock
	j.SourcePaths = []string{"/dev/vda"}
	j.Encryption, j.EncryptionKey = ferry.EncryptionSM4, []byte("a text secret of any length ≥ 16")
	if err := j.Validate(); err != nil {
		t.Fatalf("valid variant rejected: %v", err)
	}
	if dir, ok := j.OrphanPolicy.MoveDir(); !ok || dir != "/var/orphans" {
		t.Fatalf("MoveDir = %q %v", dir, ok)
	}
}

func TestEncryptionKeyNeverPrinted(t *testing.T) {
	j := validJob()
	j.Encryption = ferry.EncryptionAES
	j.EncryptionKey = bytes.Repeat([]byte("K"), 32)
	secret := strings.Repeat("K", 32)
	hexSecret := strings.Repeat("4b", 32)
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	log.Info("job", "job", j, "key", j.EncryptionKey)
	log.Info("job value", "job", *j)
	js, _ := json.Marshal(j)
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", j), "%+v": fmt.Sprintf("%+v", *j), "%#v": fmt.Sprintf("%#v", *j),
		"%s": fmt.Sprintf("%s", j.EncryptionKey), "%x": fmt.Sprintf("%x", j.EncryptionKey),
		"json": string(js), "slog": logs.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(strings.ToLower(out), hexSecret) || strings.Contains(out, "75, 75, 75") {
			t.Errorf("%s leaks the key: %s", how, out)
		}
	}
}

func TestErrorHelpers(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", ferry.Errorf(ferry.ENOTFOUND, "job %q not found", "x"))
	if ferry.ErrorCode(err) != ferry.ENOTFOUND || ferry.ErrorMessage(err) != `job "x" not found` {
		t.Fatalf("code %q message %q", ferry.ErrorCode(err), ferry.ErrorMessage(err))
	}
	plain := errors.New("disk on fire")
	if ferry.ErrorCode(plain) != ferry.EINTERNAL || strings.Contains(ferry.ErrorMessage(plain), "fire") {
		t.Fatalf("internal error leaks: %q %q", ferry.ErrorCode(plain), ferry.ErrorMessage(plain))
	}
	if ferry.ErrorCode(nil) != "" || ferry.ErrorMessage(nil) != "" {
		t.Fatal("nil error has a code")
	}
	verr := (&ferry.User{Username: "UPPER"}).Validate()
	if !strings.Contains(verr.Error(), "username") || !strings.Contains(ferry.ErrorMessage(verr), "username") {
		t.Fatalf("validation message %q", ferry.ErrorMessage(verr))
	}
}

func TestAuditHash(t *testing.T) {
	r := &ferry.AuditRecord{ID: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600)), Actor: "alice", Action: "jobs.create", Target: "job:1", Result: ferry.AuditSuccess}
	h := r.ComputeHash("prev")
	same := *r
	same.Time = r.Time.UTC()
	if same.ComputeHash("prev") != h {
		t.Fatal("hash depends on the time zone")
	}
	for name, mutate := range map[string]func(*ferry.AuditRecord){
		"actor": func(r *ferry.AuditRecord) { r.Actor = "bob" }, "id": func(r *ferry.AuditRecord) { r.ID = 8 },
		"time":   func(r *ferry.AuditRecord) { r.Time = r.Time.Add(time.Microsecond) },
		"result": func(r *ferry.AuditRecord) { r.Result = ferry.AuditDenied },
		"detail": func(r *ferry.AuditRecord) { r.Detail = "x" },
	} {
		c := *r
		mutate(&c)
		if c.ComputeHash("prev") == h {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
	if r.ComputeHash("other") == h {
		t.Error("hash ignores the previous hash")
	}
	// Field boundaries are unambiguous.
	a := ferry.AuditRecord{Actor: "ab", Action: "c"}
	b := ferry.AuditRecord{Actor: "a", Action: "bc"}
	if a.ComputeHash("") == b.ComputeHash("") {
		t.Error("hash confuses field boundaries")
	}
}

func TestIDsAndSecrets(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := ferry.NewID()
		if len(id) != 16 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	s := ferry.NewSecret("fss_")
	if !strings.HasPrefix(s, "fss_") || len(s) < 50 || ferry.HashSecret(s) == ferry.HashSecret(s+"x") || len(ferry.HashSecret(s)) != 64 {
		t.Fatalf("secret %q hash %q", s, ferry.HashSecret(s))
	}
}

func TestOtherValidators(t *testing.T) {
	invalid := map[string]error{
		"role":       (&ferry.Role{Name: "has space"}).Validate(),
		"permission": (&ferry.Permission{Name: "jobs"}).Validate(),
		"host":       (&ferry.Host{}).Validate(),
		"session":    (&ferry.Session{UserID: 1, TokenHash: "short"}).Validate(),
		"alarm":      (&ferry.AlarmRule{Name: "x", Kind: ferry.AlarmDiskAbove, Threshold: 120, Severity: ferry.SeverityInfo}).Validate(),
		"webhook":    (&ferry.AlarmRule{Name: "x", Kind: ferry.AlarmJobFailed, Severity: ferry.SeverityInfo, Channels: []ferry.AlarmChannel{{Type: ferry.ChannelWebhook, Target: "ftp://x"}}}).Validate(),
		"setting":    (&ferry.Setting{Key: "k", Value: []byte("{")}).Validate(),
		"event":      (&ferry.JobEvent{JobID: "j", Type: "state", ToState: "nope"}).Validate(),
		"audit":      (&ferry.AuditRecord{Action: "x", Result: "maybe"}).Validate(),
		"report tz":  (&ferry.ReportSchedule{Name: "r", Items: []string{"jobs"}, Period: "day", Cron: "@daily", Format: "csv", Recipients: []string{"a@b.c"}, TimeZone: "Mars/Olympus"}).Validate(),
	}
	for name, err := range invalid {
		if ferry.ErrorCode(err) != ferry.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", name, err)
		}
	}
	valid := map[string]error{
		"role":       (&ferry.Role{Name: "ops-team"}).Validate(),
		"permission": (&ferry.Permission{Name: "jobs:operate"}).Validate(),
		"alarm":      (&ferry.AlarmRule{Name: "x", Kind: ferry.AlarmStalled, For: time.Minute, Severity: ferry.SeverityInfo, Channels: []ferry.AlarmChannel{{Type: ferry.ChannelSMS, Target: "+100", Provider: "p"}}}).Validate(),
		"report":     (&ferry.ReportSchedule{Name: "r", Items: []string{"jobs"}, Period: "day", Cron: "0 7 * * 1-5", Format: "xlsx", Recipients: []string{"a@b.c"}, TimeZone: "UTC"}).Validate(),
	}
	for name, err := range valid {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	h := &ferry.Host{ID: "abc", Name: "h", LastSeenAt: time.Unix(100, 0)}
	if h.Status(time.Unix(130, 0), time.Minute) != ferry.HostOnline || h.Status(time.Unix(200, 0), time.Minute) != ferry.HostOffline {
		t.Fatal("host status")
	}
	h.RevokedAt = time.Unix(120, 0)
	if h.Status(time.Unix(130, 0), time.Minute) != ferry.HostRevoked || h.TaskQueue() != "host-abc" {
		t.Fatal("revoked host status")
	}
}
