package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/alexedwards/argon2id"
	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/store"
	"github.com/ferry-migrate/ferry/workflows"
)

// testEnv is a server on a fresh SQLite database with the built-in accounts
// bootstrapped and their first password change done.
type testEnv struct {
	t      *testing.T
	db     *store.DB
	srv    *Server
	api    humatest.TestAPI
	ca     *pki.CA
	engine *stubEngine
	// token and password of each built-in account, by username.
	token    map[string]string
	password map[string]string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	creds, err := bootstrap(ctx, db, fastHashing)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 4 {
		t.Fatalf("Bootstrap created %d accounts, want 4", len(creds))
	}
	if err := pki.InitCA(filepath.Join(dir, "ca"), "test CA"); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, db: db, ca: ca, engine: newStubEngine(), token: map[string]string{}, password: map[string]string{}}
	srv, err := New(Config{DB: db, PasswordHashing: fastHashing, CA: ca, Engine: e.engine, TemporalUIURL: "http://temporal.test:8233",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.api = humatest.Wrap(quietTB{t}, srv.API())
	for _, c := range creds {
		tok := e.login(c.User, c.Password, http.StatusOK)
		newPW := c.Password + "-New9"
		e.expect(e.do("POST", "/api/v1/auth/password", tok, map[string]any{"currentPassword": c.Password, "newPassword": newPW}), http.StatusNoContent)
		e.token[c.User] = tok
		e.password[c.User] = newPW
	}
	return e
}

// fastHashing keeps argon2id cheap in tests; TestBootstrap checks the
// production parameters.
var fastHashing = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// quietTB drops humatest's per-request logging, which would bury failures.
type quietTB struct{ *testing.T }

func (quietTB) Log(...any) {}

// do sends a request; token may be ""; body may be nil, a string (sent
// raw as JSON) or any value marshalled to JSON.
func (e *testEnv) do(method, path, token string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	var args []any
	if token != "" {
		args = append(args, "Authorization: Bearer "+token)
	}
	switch b := body.(type) {
	case nil:
	case string:
		args = append(args, "Content-Type: application/json", strings.NewReader(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		args = append(args, "Content-Type: application/json", strings.NewReader(string(raw)))
	}
	return e.api.Do(method, path, args...)
}

func (e *testEnv) expect(r *httptest.ResponseRecorder, status int) *httptest.ResponseRecorder {
	e.t.Helper()
	if r.Code != status {
		e.t.Fatalf("status %d, want %d: %s", r.Code, status, r.Body.String())
	}
	return r
}

func (e *testEnv) login(user, password string, status int) string {
	e.t.Helper()
	r := e.expect(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": user, "password": password}), status)
	if status != http.StatusOK {
		return ""
	}
	var out SessionBody
	decode(e.t, r, &out)
	return out.Token
}

func decode(t *testing.T, r *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", r.Body.String(), err)
	}
}

func problemOf(t *testing.T, r *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := r.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("Content-Type %q, want application/problem+json (status %d, body %s)", ct, r.Code, r.Body.String())
	}
	var p Problem
	decode(t, r, &p)
	if p.Status != r.Code {
		t.Fatalf("problem status %d differs from HTTP status %d", p.Status, r.Code)
	}
	return p
}

// enrollHost registers a host through the API and returns its ID.
func (e *testEnv) enrollHost(name string) (EnrollResult, string) {
	e.t.Helper()
	r := e.expect(e.do("POST", "/api/v1/hosts/enrollment-tokens", e.token["admin"], map[string]any{"description": name}), http.StatusCreated)
	var tok CreateEnrollmentTokenOutput
	decode(e.t, r, &tok.Body)
	r = e.expect(e.do("POST", "/api/v1/agents/enroll", "", map[string]any{"token": tok.Body.Token, "name": name,
		"facts": testFacts(name)}), http.StatusOK)
	var res EnrollResult
	decode(e.t, r, &res)
	return res, tok.Body.Token
}

func testFacts(hostname string) HostFacts {
	return HostFacts{Hostname: hostname, OS: "linux", Platform: "Debian 12", Arch: "amd64", Kernel: "6.18.0", CPUs: 4,
		MemoryBytes: 8 << 30, Disks: []ferry.HostDisk{{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4", TotalBytes: 100 << 30, FreeBytes: 60 << 30}},
		Addresses: []string{"192.0.2.10"}, AgentVersion: "0.1.0"}
}

// createJob creates a job between two fresh hosts as admin.
func (e *testEnv) createJob(name string) JobView {
	e.t.Helper()
	src, _ := e.enrollHost(name + "-src")
	dst, _ := e.enrollHost(name + "-dst")
	r := e.expect(e.do("POST", "/api/v1/jobs", e.token["admin"], map[string]any{"name": name, "sourceHostId": src.HostID,
		"sourcePaths": []string{"/srv/data"}, "targetHostId": dst.HostID, "targetPath": "/srv/data"}), http.StatusCreated)
	var j JobView
	decode(e.t, r, &j)
	return j
}

// stubEngine stands in for Temporal in the handler tests: a small state
// machine with the workflow's action rules. The real engine is exercised by
// the integration tests.
type stubEngine struct {
	mu      sync.Mutex // guards jobs, remove and options
	jobs    map[string]*JobStatus
	remove  map[string]bool
	options map[string]workflows.OptionsInput // the last options delivered per job
}

func newStubEngine() *stubEngine {
	return &stubEngine{jobs: map[string]*JobStatus{}, remove: map[string]bool{}, options: map[string]workflows.OptionsInput{}}
}

// UpdateOptions records the options as the workflow would get them and
// refuses them while cutting over, like the workflow's validator.
func (s *stubEngine) UpdateOptions(_ context.Context, j *ferry.Job, actor string) (workflows.OptionsResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.jobs[j.ID]
	if !ok {
		return workflows.OptionsResult{}, ferry.Errorf(ferry.ENOTFOUND, "job %s has no workflow", j.ID)
	}
	if st.State == ferry.JobCuttingOver {
		return workflows.OptionsResult{}, ferry.Errorf(ferry.ECONFLICT, "cannot update-options: job is %s", st.State)
	}
	s.options[j.ID] = workflows.OptionsFromJob(j, actor)
	return workflows.OptionsResult{State: st.State, BandwidthApplied: st.State == ferry.JobSyncing}, nil
}

func (s *stubEngine) Launch(_ context.Context, j *ferry.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[j.ID] = &JobStatus{JobID: j.ID, State: ferry.JobPending}
	return nil
}

var stubTransitions = map[string]map[ferry.JobState]ferry.JobState{
	ActionStart:       {ferry.JobPending: ferry.JobSyncing},
	ActionPause:       {ferry.JobSyncing: ferry.JobPaused, ferry.JobReadyForCutover: ferry.JobPaused},
	ActionResume:      {ferry.JobPaused: ferry.JobSyncing},
	ActionCutover:     {ferry.JobReadyForCutover: ferry.JobCutoverComplete, ferry.JobSyncing: ferry.JobCutoverComplete},
	ActionTestCutover: {ferry.JobReadyForCutover: ferry.JobTestCutover},
	ActionEndTest:     {ferry.JobTestCutover: ferry.JobReadyForCutover},
	ActionRollback:    {ferry.JobCutoverComplete: ferry.JobSyncing},
	ActionRemirror:    {ferry.JobSyncing: ferry.JobMirroring},
	ActionCancel:      {ferry.JobPending: ferry.JobCancelled, ferry.JobSyncing: ferry.JobCancelled, ferry.JobPaused: ferry.JobCancelled},
}

func (s *stubEngine) Action(_ context.Context, id, action, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.jobs[id]
	if !ok {
		return ferry.Errorf(ferry.ENOTFOUND, "job %s has no workflow", id)
	}
	to, ok := stubTransitions[action][st.State]
	if !ok {
		return ferry.Errorf(ferry.ECONFLICT, "cannot %s a job in state %s", action, st.State)
	}
	st.State = to
	return nil
}

// advance moves a job's status, as the workflow would.
func (s *stubEngine) advance(id string, state ferry.JobState, p Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[id].State = state
	s.jobs[id].Progress = p
}

func (s *stubEngine) Status(_ context.Context, id string) (*JobStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.jobs[id]
	if !ok {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "job %s has no workflow", id)
	}
	cp := *st
	return &cp, nil
}

func (s *stubEngine) Remove(_ context.Context, j *ferry.Job, removeTargetData bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := j.ID
	delete(s.jobs, id)
	s.remove[id] = removeTargetData
	return nil
}
