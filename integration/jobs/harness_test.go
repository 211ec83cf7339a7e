// Package jobs holds the end-to-end tests of migration jobs: the real
// Temporal dev server, the real store, real agents (the data plane) and
// real host workers, in process or as separate processes that are killed.
//
//	go run ./integration/services/testenv -- go test ./integration/jobs/
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/store"
	"github.com/ferry-migrate/ferry/worker"
	"github.com/ferry-migrate/ferry/workflows"
)

const (
	envTemporal = "FERRY_TEST_TEMPORAL_ADDR"
	envPostgres = "FERRY_TEST_POSTGRES_DSN"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// cluster is one test's control plane: a Temporal client, a migrated store,
// a control worker on a task queue of its own, and a CA for the agents.
type cluster struct {
	t    *testing.T
	c    client.Client
	db   *store.DB
	dsn  string // the store's DSN, for control processes
	addr string // Temporal's address
	tq   string
	ca   string
	ctl  *agent.Controller // the test's own view of the agents (verify)
	ctlW sdkworker.Worker
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	addr := os.Getenv(envTemporal)
	if addr == "" {
		t.Skip(envTemporal + " not set: run through `go run ./integration/services/testenv -- go test ./integration/jobs/`")
	}
	c, err := client.Dial(client.Options{HostPort: addr, Logger: sdklog.NewStructuredLogger(quiet())})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	t.Cleanup(c.Close)
	db, dsn := openStore(t)
	cl := &cluster{t: t, c: c, db: db, dsn: dsn, addr: addr, tq: "ferry-control-" + ferry.NewID()}
	cl.ca = filepath.Join(t.TempDir(), "ca")
	if err := pki.InitCA(cl.ca, "test CA"); err != nil {
		t.Fatal(err)
	}
	id, err := pki.LoadOrIssue(cl.ca, filepath.Join(t.TempDir(), "cli"), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.ctl = &agent.Controller{TLS: id.ClientTLS()}
	cl.startControlWorker()
	return cl
}

func (cl *cluster) startControlWorker() {
	w, err := worker.New(worker.Config{Client: cl.c, TaskQueue: cl.tq, Controller: &activities.Controller{
		Settings: cl.db, Events: cl.db, JobStates: cl.db, Schedules: cl.c.ScheduleClient(),
	}})
	if err != nil {
		cl.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		cl.t.Fatal(err)
	}
	cl.ctlW = w
	cl.t.Cleanup(w.Stop)
}

// openStore opens a fresh, migrated database: a schema of its own in the
// PostgreSQL named by FERRY_TEST_POSTGRES_DSN, else a SQLite file.
func openStore(t *testing.T) (*store.DB, string) {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "ferry.db")
	if pg := os.Getenv(envPostgres); pg != "" {
		admin, err := sql.Open("postgres", pg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Close() })
		var b [6]byte
		rand.Read(b[:])
		schema := "ferry_jobs_" + hex.EncodeToString(b[:])
		if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE") })
		u, err := url.Parse(pg)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db, dsn
}

// host is one machine: an agent serving the data channel and a host worker
// polling its task queue, in this process. Root is a directory the test uses
// as the host's filesystem.
type host struct {
	ID     string
	Root   string
	Agent  *agent.Agent
	Addr   string
	worker sdkworker.Worker
	cl     *cluster
	stop   context.CancelFunc
}

func (cl *cluster) addHost(name string) *host {
	t := cl.t
	t.Helper()
	h := &host{ID: ferry.NewID(), Root: t.TempDir(), cl: cl}
	if err := cl.db.CreateHost(context.Background(), &ferry.Host{ID: h.ID, Name: name + "-" + h.ID, OS: "linux"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	id, err := pki.LoadOrIssue(cl.ca, filepath.Join(dir, "identity"), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"),
		ServerTLS: id.ServerTLS(), ClientTLS: id.ClientTLS(), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx); close(done) }()
	h.Agent, h.Addr, h.stop = a, a.Addr().String(), cancel
	t.Cleanup(func() { cancel(); <-done })
	h.startWorker()
	return h
}

func (h *host) activities() *activities.Host {
	return &activities.Host{
		ID: h.ID, AgentVersion: "v0.1.0", HeartbeatEvery: 500 * time.Millisecond,
		Engine: &activities.AgentEngine{Controller: h.cl.ctl, SelfAddr: h.Addr, SyncInterval: 200 * time.Millisecond},
	}
}

// startWorker starts the host's Temporal worker (again, after stopWorker).
func (h *host) startWorker() {
	w, err := worker.NewHost(h.cl.c, h.activities(), sdkworker.Options{})
	if err != nil {
		h.cl.t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		h.cl.t.Fatal(err)
	}
	h.worker = w
	h.cl.t.Cleanup(func() {
		if h.worker == w {
			w.Stop()
		}
	})
}

// stopWorker takes the host's agent offline for Temporal.
func (h *host) stopWorker() {
	h.worker.Stop()
	h.worker = nil
}

func (h *host) path(rel ...string) string { return filepath.Join(append([]string{h.Root}, rel...)...) }

// spec creates the job in the store and returns its workflow spec with
// timings short enough for tests.
// hostRef names a host for job specs and verify.
type hostRef struct{ ID, Addr string }

func (h *host) ref() hostRef { return hostRef{h.ID, h.Addr} }

func (cl *cluster) spec(src, dst hostRef, srcPath, dstPath string) workflows.JobSpec {
	t := cl.t
	t.Helper()
	j := &ferry.Job{Name: "test job", SourceHostID: src.ID, SourcePaths: []string{srcPath}, TargetHostID: dst.ID, TargetPath: dstPath}
	if err := cl.db.CreateJob(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	s, err := workflows.SpecFromJob(j, dst.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s.LagThreshold = 5 * time.Second
	s.ReadyStableFor = time.Second
	s.HostProbe = 3 * time.Second
	s.HostGracePeriod = time.Minute
	s.HeartbeatTimeout = 5 * time.Second
	s.SyncWindow = 5 * time.Second
	s.RollbackWindow = time.Hour
	return s
}

func (cl *cluster) start(s workflows.JobSpec) client.WorkflowRun {
	cl.t.Helper()
	run, err := cl.c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: s.JobID, TaskQueue: cl.tq},
		workflows.MigrationWorkflow, workflows.MigrationInput{Spec: s})
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.t.Cleanup(func() {
		cl.c.TerminateWorkflow(context.Background(), s.JobID, "", "test ended")
	})
	return run
}

// action sends an Update and waits for its result.
func (cl *cluster) action(jobID, name string) (workflows.ActionResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := cl.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: jobID, UpdateName: name, Args: []any{workflows.ActionInput{Actor: "tester"}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return workflows.ActionResult{}, err
	}
	var res workflows.ActionResult
	return res, h.Get(ctx, &res)
}

func (cl *cluster) mustAction(jobID, name string, want ferry.JobState) {
	cl.t.Helper()
	res, err := cl.action(jobID, name)
	if err != nil {
		cl.t.Fatalf("%s: %v", name, err)
	}
	if res.State != want {
		cl.t.Fatalf("%s answered %s, want %s", name, res.State, want)
	}
}

func (cl *cluster) status(jobID string) (workflows.Status, error) {
	v, err := cl.c.QueryWorkflow(context.Background(), jobID, "", workflows.QueryStatus)
	if err != nil {
		return workflows.Status{}, err
	}
	var st workflows.Status
	return st, v.Get(&st)
}

// waitFor polls the job's status until ok or the timeout.
func (cl *cluster) waitFor(jobID string, timeout time.Duration, what string, ok func(workflows.Status) bool) workflows.Status {
	cl.t.Helper()
	deadline := time.Now().Add(timeout)
	var st workflows.Status
	var err error
	for time.Now().Before(deadline) {
		st, err = cl.status(jobID)
		if err == nil && ok(st) {
			return st
		}
		if err == nil && (st.State == ferry.JobFailed || st.State == ferry.JobCancelled) {
			cl.t.Fatalf("waiting for %s: job is %s: %s", what, st.State, st.LastError)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cl.t.Fatalf("timed out after %s waiting for %s: last status %+v (err %v)", timeout, what, st, err)
	return st
}

func (cl *cluster) waitState(jobID string, state ferry.JobState, timeout time.Duration) workflows.Status {
	cl.t.Helper()
	return cl.waitFor(jobID, timeout, string(state), func(s workflows.Status) bool { return s.State == state })
}

// verify compares two trees through the agents; nil means identical.
func (cl *cluster) verify(src hostRef, srcPath string, dst hostRef, dstPath string) []string {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	diffs, err := cl.ctl.Verify(ctx, agent.Endpoint{Addr: src.Addr, Path: srcPath}, agent.Endpoint{Addr: dst.Addr, Path: dstPath}, activities.MirrorOptionsWire(activities.MirrorOptions{}))
	if err != nil {
		cl.t.Fatalf("verify: %v", err)
	}
	var out []string
	for _, d := range diffs {
		out = append(out, fmt.Sprintf("%s %v %s", d.Path, d.Kinds, d.Detail))
	}
	return out
}

// events returns the job's events from the store, oldest first.
func (cl *cluster) events(jobID string) []*ferry.JobEvent {
	cl.t.Helper()
	evs, _, err := cl.db.ListJobEvents(context.Background(), ferry.JobEventFilter{JobID: jobID, Limit: 1000})
	if err != nil {
		cl.t.Fatal(err)
	}
	return evs
}

func stateTrail(evs []*ferry.JobEvent) []ferry.JobState {
	var out []ferry.JobState
	for _, e := range evs {
		if e.Type == ferry.JobEventState {
			out = append(out, e.ToState)
		}
	}
	return out
}

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }
