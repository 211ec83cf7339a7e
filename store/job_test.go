package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func newHost(t *testing.T, db *store.DB, name string) *ferry.Host {
	t.Helper()
	h := &ferry.Host{Name: name, Hostname: name + ".lan", OS: "linux", Arch: "amd64", CPUs: 2, MemoryBytes: 4 << 30}
	mustNoErr(t, db.CreateHost(ctx, h))
	return h
}

func newJob(src, dst *ferry.Host, name string) *ferry.Job {
	return &ferry.Job{Name: name, SourceHostID: src.ID, SourcePaths: []string{"/srv/data"}, TargetHostID: dst.ID, TargetPath: "/srv/data"}
}

func TestJobRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		a, b := newHost(t, db, "a"), newHost(t, db, "b")
		owner := newUser("owner")
		mustNoErr(t, db.CreateUser(ctx, owner))
		key := bytes.Repeat([]byte{0xA5}, 32)
		j := &ferry.Job{
			Name: "web", Description: "the web server", Mode: ferry.JobModeFile,
			SourceHostID: a.ID, SourcePaths: []string{"/", "/boot"},
			TargetHostID: b.ID, TargetPath: "/mnt/stage",
			Excludes: []string{"*.tmp", "/var/cache/**"}, SystemProfile: true,
			ChecksumMode: ferry.ChecksumStrict, ErrorPolicy: ferry.ErrorSkip,
			OrphanPolicy: ferry.OrphanMoveTo("/var/ferry-orphans"),
			Compression:  ferry.CompressionExtreme, Encryption: ferry.EncryptionAES, EncryptionKey: key,
			BandwidthSchedule: "Mon-Fri,08:00,10M 18:00,off",
			LagThreshold:      3 * time.Second, HostOfflineGrace: 2 * time.Hour,
			Cutover: ferry.CutoverOptions{
				PreCutoverHook: ferry.Hook{Command: "systemctl stop nginx", Timeout: time.Minute},
				PostCutoverActions: []ferry.CutoverAction{
					{Name: "start", Command: "systemctl start nginx", MustSucceed: true},
					{Name: "notify", Command: "curl -fsS http://hooks/done"},
				},
				ShutdownSource: true, ShutdownSourceHook: ferry.Hook{Command: "poweroff"},
			},
			CreatedByID: owner.ID,
		}
		mustNoErr(t, db.CreateJob(ctx, j))
		if j.ID == "" || j.State != ferry.JobPending || j.Version != 1 {
			t.Fatalf("after create: id %q state %q version %d", j.ID, j.State, j.Version)
		}
		got, err := db.FindJobByID(ctx, j.ID)
		mustNoErr(t, err)
		wantJSON, _ := json.Marshal(j)
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(wantJSON, gotJSON) {
			t.Fatalf("round trip differs:\n got %s\nwant %s", gotJSON, wantJSON)
		}
		if !bytes.Equal(got.EncryptionKey, key) {
			t.Fatalf("key round trip: got %x", []byte(got.EncryptionKey))
		}

		// Optimistic concurrency.
		stale := *got
		got.Compression = ferry.CompressionFast
		mustNoErr(t, db.UpdateJob(ctx, got))
		if got.Version != 2 {
			t.Fatalf("version after update = %d", got.Version)
		}
		stale.Compression = ferry.CompressionOff
		wantCode(t, db.UpdateJob(ctx, &stale), ferry.ECONFLICT)
		again, err := db.FindJobByID(ctx, j.ID)
		mustNoErr(t, err)
		if again.Compression != ferry.CompressionFast || again.Version != 2 {
			t.Fatalf("stale update leaked: %s v%d", again.Compression, again.Version)
		}
		missing := *again
		missing.ID = "nosuchjob"
		wantCode(t, db.UpdateJob(ctx, &missing), ferry.ENOTFOUND)

		// Deleting a host in use is refused; deleting the job removes its events.
		wantCode(t, db.DeleteHost(ctx, a.ID), ferry.ECONFLICT)
		_, err = db.SetJobState(ctx, j.ID, ferry.JobPrechecking, "", "system")
		mustNoErr(t, err)
		mustNoErr(t, db.DeleteJob(ctx, j.ID))
		_, n, err := db.ListJobEvents(ctx, ferry.JobEventFilter{JobID: j.ID})
		mustNoErr(t, err)
		if n != 0 {
			t.Fatalf("%d events outlived their job", n)
		}
		wantCode(t, db.DeleteJob(ctx, j.ID), ferry.ENOTFOUND)
		mustNoErr(t, db.DeleteHost(ctx, a.ID))
	})
}

func TestJobStateAndEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		a, b := newHost(t, db, "a"), newHost(t, db, "b")
		j := newJob(a, b, "j")
		mustNoErr(t, db.CreateJob(ctx, j))
		steps := []ferry.JobState{ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing, ferry.JobReadyForCutover, ferry.JobCuttingOver, ferry.JobCutoverComplete}
		for _, s := range steps {
			clk.advance(time.Minute)
			ev, err := db.SetJobState(ctx, j.ID, s, "reached "+string(s), "system")
			mustNoErr(t, err)
			if ev.ToState != s || ev.ID == 0 {
				t.Fatalf("event %+v", ev)
			}
		}
		got, err := db.FindJobByID(ctx, j.ID)
		mustNoErr(t, err)
		start := newClock().t.Add(time.Minute).Truncate(time.Microsecond)
		if got.State != ferry.JobCutoverComplete || !got.StartedAt.Equal(start) || !got.FinishedAt.Equal(clk.t.Truncate(time.Microsecond)) {
			t.Fatalf("state %s started %v finished %v", got.State, got.StartedAt, got.FinishedAt)
		}
		mustNoErr(t, db.AppendJobEvent(ctx, &ferry.JobEvent{JobID: j.ID, Type: ferry.JobEventCompare, Message: "0 differences", Details: json.RawMessage(`{"differences":0}`)}))
		evs, n, err := db.ListJobEvents(ctx, ferry.JobEventFilter{JobID: j.ID})
		mustNoErr(t, err)
		if n != len(steps)+1 || len(evs) != n {
			t.Fatalf("%d events (%d listed), want %d", n, len(evs), len(steps)+1)
		}
		for i, s := range steps {
			from := ferry.JobPending
			if i > 0 {
				from = steps[i-1]
			}
			if evs[i].FromState != from || evs[i].ToState != s {
				t.Fatalf("event %d: %s -> %s, want %s -> %s", i, evs[i].FromState, evs[i].ToState, from, s)
			}
		}
		var details map[string]int
		mustNoErr(t, json.Unmarshal(evs[n-1].Details, &details))
		if details["differences"] != 0 || evs[n-1].Type != ferry.JobEventCompare {
			t.Fatalf("compare event %+v", evs[n-1])
		}
		tail, _, err := db.ListJobEvents(ctx, ferry.JobEventFilter{JobID: j.ID, AfterID: evs[3].ID, Types: []string{ferry.JobEventState}})
		mustNoErr(t, err)
		if len(tail) != 2 || tail[0].ToState != ferry.JobCuttingOver {
			t.Fatalf("events after %d: %+v", evs[3].ID, tail)
		}
		_, err = db.SetJobState(ctx, j.ID, "bogus", "", "")
		wantCode(t, err, ferry.EINVALID)
		_, err = db.SetJobState(ctx, "nosuchjob", ferry.JobFailed, "", "")
		wantCode(t, err, ferry.ENOTFOUND)
		fe := wantCode(t, db.AppendJobEvent(ctx, &ferry.JobEvent{JobID: "nosuchjob", Type: ferry.JobEventHost}), ferry.EINVALID)
		wantField(t, fe, "jobId")
	})
}

func TestListJobsFilterAndPaginate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		a, b, c := newHost(t, db, "a"), newHost(t, db, "b"), newHost(t, db, "c")
		var ids []string // oldest first
		for i := range 25 {
			clk.advance(time.Second)
			src, dst := a, b
			if i%5 == 0 {
				src, dst = c, a
			}
			j := newJob(src, dst, fmt.Sprintf("job-%02d", i))
			if i%3 == 0 {
				j.Description = "Database tier"
			}
			mustNoErr(t, db.CreateJob(ctx, j))
			if i%4 == 0 {
				_, err := db.SetJobState(ctx, j.ID, ferry.JobSyncing, "", "system")
				mustNoErr(t, err)
			}
			ids = append(ids, j.ID)
		}
		newestFirst := slices.Clone(ids)
		slices.Reverse(newestFirst)

		var seen []string
		for off := 0; off < 30; off += 10 {
			jobs, total, err := db.ListJobs(ctx, ferry.JobFilter{Offset: off, Limit: 10})
			mustNoErr(t, err)
			if total != 25 {
				t.Fatalf("total = %d", total)
			}
			for _, j := range jobs {
				seen = append(seen, j.ID)
			}
		}
		if !slices.Equal(seen, newestFirst) {
			t.Fatalf("pages = %v\nwant %v", seen, newestFirst)
		}

		count := func(f ferry.JobFilter) (int, []*ferry.Job) {
			t.Helper()
			f.Limit = 100
			jobs, total, err := db.ListJobs(ctx, f)
			mustNoErr(t, err)
			if total != len(jobs) {
				t.Fatalf("total %d but %d jobs", total, len(jobs))
			}
			return total, jobs
		}
		if n, jobs := count(ferry.JobFilter{States: []ferry.JobState{ferry.JobSyncing}}); n != 7 || jobs[0].State != ferry.JobSyncing {
			t.Fatalf("syncing = %d", n)
		}
		if n, _ := count(ferry.JobFilter{States: []ferry.JobState{ferry.JobSyncing, ferry.JobPending}}); n != 25 {
			t.Fatalf("syncing+pending = %d", n)
		}
		if n, _ := count(ferry.JobFilter{SourceHostID: c.ID}); n != 5 {
			t.Fatalf("source c = %d", n)
		}
		if n, _ := count(ferry.JobFilter{HostID: a.ID}); n != 25 {
			t.Fatalf("host a = %d", n)
		}
		if n, _ := count(ferry.JobFilter{TargetHostID: b.ID}); n != 20 {
			t.Fatalf("target b = %d", n)
		}
		if n, _ := count(ferry.JobFilter{Query: "DATABASE"}); n != 9 {
			t.Fatalf("query database = %d", n)
		}
		if n, _ := count(ferry.JobFilter{Query: "job-1"}); n != 10 {
			t.Fatalf("query job-1 = %d", n)
		}
		if n, _ := count(ferry.JobFilter{Query: "%"}); n != 0 {
			t.Fatalf("query %% matched %d (LIKE not escaped)", n)
		}
		if n, _ := count(ferry.JobFilter{SourceHostID: c.ID, States: []ferry.JobState{ferry.JobSyncing}}); n != 2 {
			t.Fatalf("source c syncing = %d", n)
		}
		_, _, err := db.ListJobs(ctx, ferry.JobFilter{States: []ferry.JobState{"nope"}})
		wantCode(t, err, ferry.EINVALID)
		jobs, total, err := db.ListJobs(ctx, ferry.JobFilter{Offset: 100})
		mustNoErr(t, err)
		if total != 25 || len(jobs) != 0 {
			t.Fatalf("past the end: %d %d", total, len(jobs))
		}
	})
}
