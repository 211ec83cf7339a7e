package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/integration/harness"
	"github.com/ferry-migrate/ferry/store"
	"github.com/ferry-migrate/ferry/worker"
)

// temporalEngine connects to the test Temporal server and runs the
// control-plane worker in this process, writing job states to db.
func temporalEngine(t *testing.T, db *store.DB) *apiserver.TemporalEngine {
	hosts, events, settings := db, db, db
	t.Helper()
	addr := harness.Env(t, "FERRY_TEST_TEMPORAL_ADDR")
	tc, err := client.Dial(client.Options{HostPort: addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatalf("dial Temporal at %s: %v", addr, err)
	}
	t.Cleanup(tc.Close)
	// A task queue of its own: other test packages run control workers on
	// the same Temporal server at the same time.
	tq := "ferry-control-" + ferry.NewID()
	w, err := worker.New(worker.Config{Client: tc, TaskQueue: tq,
		Controller: &activities.Controller{Settings: settings, Events: events, JobStates: db}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return &apiserver.TemporalEngine{Client: tc, TaskQueue: tq, Hosts: hosts}
}

// TestJobActionsOnTemporal drives a job's real workflow through the API:
// an illegal action is refused with the state named, start is accepted,
// the progress stream follows the workflow's states, and cancel ends the
// stream. The hosts' agents are not running, so the job goes no further
// than prechecks; copying with agents is the orchestration suite's part.
func TestJobActionsOnTemporal(t *testing.T) {
	harness.Env(t, "FERRY_TEST_TEMPORAL_ADDR")
	var e *env
	eng := &lazyEngine{}
	e = newEnv(t, options{engine: eng})
	eng.JobEngine = temporalEngine(t, e.db)

	src, _ := e.enroll("t-src")
	dst, _ := e.enroll("t-dst")
	job := e.createJob("temporal", src.HostID, dst.HostID)

	// The workflow exists and answers its status query.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := eng.Status(context.Background(), job.ID)
		if err == nil && st.State == ferry.JobPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow of job %s does not answer: %v %+v", job.ID, err, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	body := e.expect(e.call("POST", "/api/v1/jobs/"+job.ID+"/actions/cutover", e.token["operator"], nil, nil), http.StatusConflict)
	if !strings.Contains(body, "pending") {
		t.Errorf("illegal cutover: %s does not name the state", body)
	}
	// A sysadmin cannot start it; an operator can.
	e.expect(e.call("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["sysadmin"], nil, nil), http.StatusForbidden)

	states := make(chan ferry.JobState, 32)
	done := make(chan []ferry.JobState, 1)
	go func() {
		seen, err := e.followProgress(job.ID, e.token["operator"], 90*time.Second, func(s ferry.JobState) { states <- s })
		if err != nil {
			t.Errorf("progress stream: %v (states %v)", err, seen)
		}
		done <- seen
	}()
	if s := <-states; s != ferry.JobPending {
		t.Fatalf("first streamed state %s", s)
	}
	var a apiserver.ActionOutput
	e.expect(e.call("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["operator"], nil, &a.Body), http.StatusOK)
	if a.Body.State == ferry.JobPending {
		t.Errorf("state after start: %s", a.Body.State)
	}
	e.expect(e.call("POST", "/api/v1/jobs/"+job.ID+"/actions/start", e.token["operator"], nil, nil), http.StatusConflict)
	e.expect(e.call("POST", "/api/v1/jobs/"+job.ID+"/actions/cancel", e.token["admin"], nil, nil), http.StatusOK)
	seen := <-done
	if len(seen) < 2 || seen[len(seen)-1] != ferry.JobCancelled {
		t.Fatalf("streamed states %v, want … cancelled", seen)
	}

	// The workflow recorded its states as job events, which the API lists.
	var evs apiserver.JobEventListOutput
	e.expect(e.call("GET", "/api/v1/jobs/"+job.ID+"/events?type=state", e.token["operator"], nil, &evs.Body), http.StatusOK)
	var to []ferry.JobState
	for _, ev := range evs.Body.Items {
		to = append(to, ev.ToState)
	}
	if !slices.Contains(to, ferry.JobCancelled) {
		t.Errorf("state events %v lack cancelled", to)
	}
	// Every action, accepted or refused, is in the audit log.
	var page apiserver.AuditListOutput
	e.expect(e.call("GET", "/api/v1/audit?target=jobs:"+job.ID+"&order=asc&limit=100", e.token["auditor"], nil, &page.Body), http.StatusOK)
	var trail []string
	for _, r := range page.Body.Items {
		trail = append(trail, r.Actor+":"+r.Action+":"+r.Result)
	}
	want := []string{"admin:create-job:success", "operator:cutover-job:failure", "sysadmin:start-job:denied",
		"operator:start-job:success", "operator:start-job:failure", "admin:cancel-job:success"}
	if !slices.Equal(trail, want) {
		t.Errorf("audit trail\n got %v\nwant %v", trail, want)
	}
	e.expect(e.call("DELETE", "/api/v1/jobs/"+job.ID, e.token["admin"], nil, nil), http.StatusNoContent)
}

// lazyEngine lets the server be built before the engine that needs its
// database.
type lazyEngine struct{ apiserver.JobEngine }
