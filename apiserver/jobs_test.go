package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
)

func TestJobLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src, _ := e.enrollHost("src")
	dst, _ := e.enrollHost("dst")
	admin := e.token["admin"]
	body := map[string]any{
		"name": "web migration", "description": "moves /srv", "sourceHostId": src.HostID,
		"sourcePaths": []string{"/srv/www", "/etc/nginx"}, "targetHostId": dst.HostID, "targetPath": "/mnt/new",
		"excludes": []string{"*.tmp"}, "systemProfile": true, "checksumMode": "strict", "errorPolicy": "skip",
		"orphanPolicy": "move:/var/orphans", "compression": "extreme", "encryption": "sm4",
		"bandwidthSchedule": "Mon-Fri 08:00-18:00 10M", "lagThresholdSeconds": 30, "hostOfflineGraceSeconds": 600,
		"cutover": map[string]any{
			"preCutoverHook":     map[string]any{"command": "systemctl stop nginx", "timeoutSeconds": 60},
			"postCutoverActions": []map[string]any{{"name": "start", "command": "systemctl start nginx", "mustSucceed": true}},
			"shutdownSource":     true, "shutdownSourceHook": map[string]any{"command": "poweroff"},
		},
	}
	var j JobView
	decode(t, e.expect(e.do("POST", "/api/v1/jobs", admin, body), http.StatusCreated), &j)
	if j.State != ferry.JobPending || j.Compression != "extreme" || j.Encryption != "sm4" || j.OrphanPolicy != "move:/var/orphans" ||
		j.LagThresholdSecs != 30 || j.HostOfflineGraceS != 600 || !j.SystemProfile || len(j.Cutover.PostCutoverActions) != 1 ||
		!j.Cutover.PostCutoverActions[0].MustSucceed || j.Cutover.PreCutoverHook.TimeoutSeconds != 60 ||
		j.TemporalURL != "http://temporal.test:8233/namespaces/default/workflows/"+j.ID {
		t.Fatalf("created job %+v", j)
	}
	stored, err := e.db.FindJobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.EncryptionKey) != 32 {
		t.Errorf("stored key of %d bytes, want a generated 32-byte secret", len(stored.EncryptionKey))
	}
	raw := e.expect(e.do("GET", "/api/v1/jobs/"+j.ID, e.token["operator"], nil), http.StatusOK).Body.String()
	if strings.Contains(strings.ToLower(raw), "encryptionkey") {
		t.Errorf("job JSON shows the key: %s", raw)
	}
	if _, ok := e.engine.jobs[j.ID]; !ok {
		t.Fatal("create-job did not launch the workflow")
	}

	// Patch options with optimistic concurrency.
	var p JobView
	decode(t, e.expect(e.do("PATCH", "/api/v1/jobs/"+j.ID, admin, map[string]any{"version": j.Version, "compression": "fast", "lagThresholdSeconds": 5}), http.StatusOK), &p)
	if p.Compression != "fast" || p.LagThresholdSecs != 5 || p.Version != j.Version+1 || p.ChecksumMode != "strict" {
		t.Errorf("patched job %+v", p)
	}
	e.expect(e.do("PATCH", "/api/v1/jobs/"+j.ID, admin, map[string]any{"version": j.Version, "compression": "off"}), http.StatusConflict)

	// Actions follow the engine's rules; an illegal one names the state.
	var a ActionOutput
	decode(t, e.expect(e.do("POST", "/api/v1/jobs/"+j.ID+"/actions/start", e.token["operator"], nil), http.StatusOK), &a.Body)
	if a.Body.State != ferry.JobSyncing {
		t.Errorf("after start: %+v", a.Body)
	}
	r := e.expect(e.do("POST", "/api/v1/jobs/"+j.ID+"/actions/end-test", e.token["operator"], nil), http.StatusConflict)
	if pr := problemOf(t, r); !strings.Contains(pr.Detail, "syncing") {
		t.Errorf("illegal action problem %q does not name the state", pr.Detail)
	}
	e.expect(e.do("POST", "/api/v1/jobs/"+j.ID+"/actions/pause", e.token["operator"], nil), http.StatusOK)
	e.expect(e.do("POST", "/api/v1/jobs/"+j.ID+"/actions/resume", e.token["admin"], nil), http.StatusOK)
	e.expect(e.do("POST", "/api/v1/jobs/bbbbbbbbbbbbbbbb/actions/start", e.token["admin"], nil), http.StatusNotFound)
	e.expect(e.do("POST", "/api/v1/jobs/"+j.ID+"/actions/explode", e.token["admin"], nil), http.StatusMethodNotAllowed)

	// Events recorded by the workflow are listed oldest first.
	for _, s := range []ferry.JobState{ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing} {
		if _, err := e.db.SetJobState(ctx, j.ID, s, "", "system"); err != nil {
			t.Fatal(err)
		}
	}
	var evs JobEventListOutput
	decode(t, e.expect(e.do("GET", "/api/v1/jobs/"+j.ID+"/events?type=state", e.token["operator"], nil), http.StatusOK), &evs.Body)
	if len(evs.Body.Items) != 3 || evs.Body.Items[0].ToState != ferry.JobPrechecking || evs.Body.Items[2].ToState != ferry.JobSyncing {
		t.Fatalf("events %+v", evs.Body.Items)
	}
	decode(t, e.expect(e.do("GET", "/api/v1/jobs/"+j.ID+"/events?afterId="+itoa(evs.Body.Items[1].ID), e.token["operator"], nil), http.StatusOK), &evs.Body)
	if len(evs.Body.Items) != 1 {
		t.Errorf("events after the second: %d", len(evs.Body.Items))
	}

	// Filters and pagination.
	other := e.createJob("db migration")
	var list JobListOutput
	decode(t, e.expect(e.do("GET", "/api/v1/jobs?state=syncing", admin, nil), http.StatusOK), &list.Body)
	if list.Body.Total != 1 || list.Body.Items[0].ID != j.ID {
		t.Errorf("state filter: %+v", list.Body)
	}
	decode(t, e.expect(e.do("GET", "/api/v1/jobs?state=pending&state=syncing", admin, nil), http.StatusOK), &list.Body)
	if list.Body.Total != 2 {
		t.Errorf("two-state filter: total %d", list.Body.Total)
	}
	decode(t, e.expect(e.do("GET", "/api/v1/jobs?host="+src.HostID, admin, nil), http.StatusOK), &list.Body)
	if list.Body.Total != 1 || list.Body.Items[0].ID != j.ID {
		t.Errorf("host filter: %+v", list.Body)
	}
	decode(t, e.expect(e.do("GET", "/api/v1/jobs?name=db", admin, nil), http.StatusOK), &list.Body)
	if list.Body.Total != 1 || list.Body.Items[0].ID != other.ID {
		t.Errorf("name filter: %+v", list.Body)
	}
	decode(t, e.expect(e.do("GET", "/api/v1/jobs?limit=1&offset=1", admin, nil), http.StatusOK), &list.Body)
	if list.Body.Total != 2 || len(list.Body.Items) != 1 || list.Body.Limit != 1 {
		t.Errorf("page: %+v", list.Body)
	}
	e.expect(e.do("GET", "/api/v1/jobs?state=bogus", admin, nil), http.StatusUnprocessableEntity)

	// Options changed while the job runs reach its workflow; while it cuts
	// over the workflow refuses them and nothing is stored.
	decode(t, e.expect(e.do("PATCH", "/api/v1/jobs/"+j.ID, admin, map[string]any{"bandwidthSchedule": "2M", "hostOfflineGraceSeconds": 90,
		"cutover": map[string]any{"preCutoverHook": map[string]any{"command": "true"}}}), http.StatusOK), &p)
	got := e.engine.options[j.ID]
	if p.BandwidthSchedule != "2M" || got.BandwidthSchedule == nil || *got.BandwidthSchedule != "2M" || got.HostGracePeriod == nil ||
		*got.HostGracePeriod != 90*time.Second || got.Cutover == nil || len(got.Cutover.PreCutover) != 1 || got.Actor != "admin" {
		t.Errorf("options delivered to the workflow %+v (stored %+v)", got, p)
	}
	e.engine.advance(j.ID, ferry.JobCuttingOver, Progress{})
	e.expect(e.do("PATCH", "/api/v1/jobs/"+j.ID, admin, map[string]any{"bandwidthSchedule": "off"}), http.StatusConflict)
	decode(t, e.expect(e.do("GET", "/api/v1/jobs/"+j.ID, admin, nil), http.StatusOK), &p)
	if p.BandwidthSchedule != "2M" {
		t.Errorf("refused change stored: %q", p.BandwidthSchedule)
	}

	// The target data goes only with a job that is not running.
	e.engine.advance(j.ID, ferry.JobSyncing, Progress{Phase: "sync", LagSeconds: 1.5, BacklogEntries: 7})
	var live JobStatus
	decode(t, e.expect(e.do("GET", "/api/v1/jobs/"+j.ID+"/status", e.token["operator"], nil), http.StatusOK), &live)
	if live.State != ferry.JobSyncing || live.Progress.LagSeconds != 1.5 || live.Progress.BacklogEntries != 7 {
		t.Errorf("live status %+v", live)
	}
	r = e.expect(e.do("DELETE", "/api/v1/jobs/"+j.ID+"?removeTargetData=true", admin, nil), http.StatusConflict)
	if pr := problemOf(t, r); !strings.Contains(pr.Detail, "syncing") {
		t.Errorf("refused removal %q does not name the state", pr.Detail)
	}
	if _, asked := e.engine.remove[j.ID]; asked {
		t.Error("a running job's target data was removed")
	}
	e.engine.advance(j.ID, ferry.JobCancelled, Progress{})
	// Delete, removing the target data.
	e.expect(e.do("DELETE", "/api/v1/jobs/"+j.ID+"?removeTargetData=true", admin, nil), http.StatusNoContent)
	if !e.engine.remove[j.ID] {
		t.Error("delete did not ask the engine to remove the target data")
	}
	e.expect(e.do("GET", "/api/v1/jobs/"+j.ID, admin, nil), http.StatusNotFound)
	e.expect(e.do("DELETE", "/api/v1/jobs/"+other.ID, admin, nil), http.StatusNoContent)
	if e.engine.remove[other.ID] {
		t.Error("delete without removeTargetData asked to remove it")
	}
}

// TestProgressStream follows the SSE stream over a real HTTP connection
// while the job advances, to its end.
func TestProgressStream(t *testing.T) {
	e := newEnv(t)
	j := e.createJob("stream")
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/jobs/"+j.ID+"/progress", nil)
	req.Header.Set("Authorization", "Bearer "+e.token["operator"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("progress: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	go func() {
		steps := []struct {
			s ferry.JobState
			p Progress
		}{
			{ferry.JobMirroring, Progress{Phase: "mirror", BytesDone: 100, BytesTotal: 1000, RateBytesPerS: 50, ETASeconds: 18}},
			{ferry.JobSyncing, Progress{Phase: "sync", BytesDone: 1000, BytesTotal: 1000, LagSeconds: 0.5}},
			{ferry.JobCutoverComplete, Progress{Phase: "cutover", BytesDone: 1000, BytesTotal: 1000}},
		}
		for _, st := range steps {
			time.Sleep(1200 * time.Millisecond)
			e.engine.advance(j.ID, st.s, st.p)
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	var events []string
	var states []ferry.JobState
	var event string
	deadline := time.AfterFunc(20*time.Second, func() { resp.Body.Close() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event != EventState:
			var st JobStatus
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &st); err != nil {
				t.Fatal(err)
			}
			events = append(events, event)
			states = append(states, st.State)
			if st.State == ferry.JobMirroring && st.Progress.RateBytesPerS != 50 {
				t.Errorf("mirroring progress %+v", st.Progress)
			}
		}
	}
	want := []ferry.JobState{ferry.JobPending, ferry.JobMirroring, ferry.JobSyncing, ferry.JobCutoverComplete}
	if len(states) != len(want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("states %v, want %v", states, want)
		}
	}
	if events[len(events)-1] != EventEnd || events[0] != EventStatus {
		t.Errorf("events %v", events)
	}
	// Unknown jobs answer 404 before any stream starts.
	e.expect(e.do("GET", "/api/v1/jobs/bbbbbbbbbbbbbbbb/progress", e.token["operator"], nil), http.StatusNotFound)
}
