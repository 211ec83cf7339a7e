package store_test

import (
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

// The store validates before writing; these cases show what the API gets.
func TestValidationNamesFields(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		a, b := newHost(t, db, "a"), newHost(t, db, "b")
		j := newJob(a, b, "bad")
		j.SourcePaths = []string{"relative/path", "/ok", "/ok"}
		j.ChecksumMode = "fuzzy"
		j.OrphanPolicy = "move:/srv/data/orphans" // inside the target path
		j.Encryption = ferry.EncryptionSM4        // no key
		j.Cutover.PostCutoverActions = []ferry.CutoverAction{{Name: "x"}}
		fe := wantCode(t, db.CreateJob(ctx, j), ferry.EINVALID)
		for _, f := range []string{"sourcePaths[0]", "sourcePaths[2]", "checksumMode", "orphanPolicy", "encryptionKey", "cutover.postCutoverActions[0].command"} {
			wantField(t, fe, f)
		}
		fe = wantCode(t, db.CreateUser(ctx, &ferry.User{Username: "Bob", PasswordHash: "x"}), ferry.EINVALID)
		wantField(t, fe, "username")
		_, n, err := db.ListJobs(ctx, ferry.JobFilter{})
		mustNoErr(t, err)
		if n != 0 {
			t.Fatalf("an invalid job was stored")
		}
	})
}

// Rows that bypass validation (raw bun inserts, as a buggy caller or an
// older binary would write them) are rejected by the database, and the
// driver error of either engine becomes a *ferry.Error naming the column.
func TestConstraintsRejectBadRows(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		a, b := newHost(t, db, "a"), newHost(t, db, "b")
		valid := func() *ferry.Job {
			j := newJob(a, b, "raw")
			j.ApplyDefaults()
			j.ID = ferry.NewID()
			return j
		}
		insert := func(table string, model any) error {
			_, err := db.Bun().NewInsert().Model(model).Exec(ctx)
			return store.Translate(err, table)
		}
		cases := []struct {
			name    string
			mutate  func(j *ferry.Job)
			code    string
			field   string
			message string
		}{
			{"check state", func(j *ferry.Job) { j.State = "exploded" }, ferry.EINVALID, "state", "jobs.state"},
			{"check compression", func(j *ferry.Job) { j.Compression = "max" }, ferry.EINVALID, "compression", "jobs.compression"},
			{"check orphan policy", func(j *ferry.Job) { j.OrphanPolicy = "move:relative" }, ferry.EINVALID, "orphanPolicy", "jobs.orphan_policy"},
			{"check lag", func(j *ferry.Job) { j.LagThreshold = -1 }, ferry.EINVALID, "lagThreshold", "jobs.lag_threshold_ns"},
			{"not null name", func(j *ferry.Job) { j.Name = "" }, ferry.EINVALID, "name", "jobs.name is required"},
			{"not null target", func(j *ferry.Job) { j.TargetPath = "" }, ferry.EINVALID, "targetPath", "jobs.target_path is required"},
			{"foreign key source", func(j *ferry.Job) { j.SourceHostID = "nohost" }, ferry.EINVALID, "sourceHostId", "source_host_id"},
		}
		for _, c := range cases {
			j := valid()
			c.mutate(j)
			err := insert("jobs", j)
			fe := wantCode(t, err, c.code)
			t.Logf("%s: %s", c.name, fe.Message)
			wantField(t, fe, c.field)
			if !strings.Contains(fe.Message, c.message) {
				t.Errorf("%s: message %q does not contain %q", c.name, fe.Message, c.message)
			}
		}

		j := valid()
		mustNoErr(t, insert("jobs", j))
		fe := wantCode(t, insert("jobs", j), ferry.ECONFLICT)
		wantField(t, fe, "id")

		u := newUser("carol")
		mustNoErr(t, db.CreateUser(ctx, u))
		dup := newUser("carol")
		fe = wantCode(t, db.CreateUser(ctx, dup), ferry.ECONFLICT)
		wantField(t, fe, "username")
		if !strings.Contains(fe.Message, "users.username") || !strings.Contains(fe.Message, "already exists") {
			t.Errorf("unique message %q", fe.Message)
		}
		fe = wantCode(t, insert("users", &ferry.User{Username: "dave"}), ferry.EINVALID)
		wantField(t, fe, "passwordHash")

		fe = wantCode(t, db.CreateHost(ctx, &ferry.Host{Name: "a"}), ferry.ECONFLICT)
		wantField(t, fe, "name")

		// A job naming a host that does not exist, through the store.
		bad := newJob(a, b, "ghost")
		bad.TargetHostID = "nohost"
		fe = wantCode(t, db.CreateJob(ctx, bad), ferry.EINVALID)
		t.Logf("store foreign key: %s", fe.Message)
		wantField(t, fe, "targetHostId")
		if !strings.Contains(fe.Message, "host that does not exist") {
			t.Errorf("foreign key message %q", fe.Message)
		}

		// Deleting a referenced row.
		_, err := db.Bun().NewDelete().Model((*ferry.Host)(nil)).Where("id = ?", a.ID).Exec(ctx)
		fe = wantCode(t, store.TranslateDelete(err, "hosts"), ferry.ECONFLICT)
		if !strings.Contains(fe.Message, "still in use") {
			t.Errorf("delete message %q", fe.Message)
		}
	})
}
