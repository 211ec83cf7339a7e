package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/integration/harness"
	"github.com/ferry-migrate/ferry/worker"
	"github.com/ferry-migrate/ferry/workflows"
)

// agentHost is an enrolled host: its agent serves the data channel with
// the certificate the API issued, and its host worker polls the host's task
// queue, both in this process.
type agentHost struct {
	en   *apiserver.Enrollment
	addr string
	root string
}

func (e *env) startAgent(te *apiserver.TemporalEngine, name string) *agentHost {
	e.t.Helper()
	t := e.t
	en, _ := e.enroll(name)
	id, err := pki.NewIdentity(en.CertPEM, en.KeyPEM, en.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ServerTLS: id.ServerTLS(),
		ClientTLS: id.ClientTLS(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h := &agentHost{en: en, addr: a.Addr().String(), root: t.TempDir()}
	w, err := worker.NewHost(te.Client, &activities.Host{ID: en.HostID, AgentVersion: "0.1.0", HeartbeatEvery: 500 * time.Millisecond,
		Engine: &activities.AgentEngine{Controller: &agent.Controller{TLS: id.ClientTLS()}, SelfAddr: h.addr, SyncInterval: 200 * time.Millisecond},
	}, sdkworker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return h
}

// TestJobToCutoverCompleteThroughAPI is the API's end-to-end run: two agents
// enroll through the API and use the certificates it issued, a job created
// through the API runs on the real workflow from pending to
// cutover_complete while the SSE stream is followed to its end, the target
// then equals the source, and the audit chain verifies.
func TestJobToCutoverCompleteThroughAPI(t *testing.T) {
	harness.Env(t, "FERRY_TEST_TEMPORAL_ADDR")
	eng := &lazyEngine{}
	e := newEnv(t, options{engine: eng})
	te := temporalEngine(t, e.db)
	eng.JobEngine = te
	src := e.startAgent(te, "e2e-src")
	dst := e.startAgent(te, "e2e-dst")
	te.TargetAddr = func(_ context.Context, j *ferry.Job) (string, error) { return dst.addr, nil }
	te.Tune = func(s *workflows.JobSpec) {
		s.ReadyStableFor, s.HostProbe, s.HeartbeatTimeout = time.Second, 3*time.Second, 5*time.Second
		s.SyncWindow, s.RollbackWindow = 5*time.Second, time.Hour
	}

	srcPath, dstPath := filepath.Join(src.root, "srv", "app"), filepath.Join(dst.root, "srv", "app")
	for i := range 20 {
		data := make([]byte, 1000+i*5000)
		rand.Read(data)
		writeTree(t, filepath.Join(srcPath, "d"+string(rune('a'+i%4)), "f"+string(rune('a'+i))+".bin"), data)
	}
	writeTree(t, filepath.Join(dstPath, "old"), []byte("previous target contents"))

	var j apiserver.JobView
	e.expect(e.call("POST", "/api/v1/jobs", e.token["admin"], map[string]any{"name": "e2e", "sourceHostId": src.en.HostID,
		"sourcePaths": []string{srcPath}, "targetHostId": dst.en.HostID, "targetPath": dstPath, "lagThresholdSeconds": 5,
		"compression": "fast"}, &j), http.StatusCreated)
	t.Cleanup(func() { te.Client.TerminateWorkflow(context.Background(), j.ID, "", "test ended") })

	states := make(chan ferry.JobState, 64)
	done := make(chan []ferry.JobState, 1)
	go func() {
		seen, err := e.followProgress(j.ID, e.token["operator"], 3*time.Minute, func(s ferry.JobState) { states <- s })
		if err != nil {
			t.Errorf("progress stream: %v (states %v)", err, seen)
		}
		close(states)
		done <- seen
	}()
	waitState := func(want ferry.JobState) {
		t.Helper()
		for s := range states {
			if s == want {
				return
			}
			if s == ferry.JobFailed || s == ferry.JobCancelled {
				st, _ := te.Status(context.Background(), j.ID)
				t.Fatalf("job %s while waiting for %s: %+v", s, want, st)
			}
		}
		t.Fatalf("stream ended before %s", want)
	}
	waitState(ferry.JobPending)
	e.expect(e.call("POST", "/api/v1/jobs/"+j.ID+"/actions/start", e.token["operator"], nil, nil), http.StatusOK)
	waitState(ferry.JobReadyForCutover)
	e.expect(e.call("POST", "/api/v1/jobs/"+j.ID+"/actions/cutover", e.token["admin"], nil, nil), http.StatusOK)
	seen := <-done
	if seen[len(seen)-1] != ferry.JobCutoverComplete {
		t.Fatalf("stream ended in %v", seen)
	}
	for _, want := range []ferry.JobState{ferry.JobPending, ferry.JobMirroring, ferry.JobReadyForCutover, ferry.JobCutoverComplete} {
		if !slices.Contains(seen, want) {
			t.Errorf("streamed states %v lack %s", seen, want)
		}
	}
	if diff := compareTrees(t, srcPath, dstPath); diff != "" {
		t.Fatalf("target differs from source after cutover: %s", diff)
	}

	var got apiserver.JobView
	e.expect(e.call("GET", "/api/v1/jobs/"+j.ID, e.token["operator"], nil, &got), http.StatusOK)
	if got.State != ferry.JobCutoverComplete || got.TemporalURL == "" {
		t.Errorf("stored job after cutover: state %s, link %q", got.State, got.TemporalURL)
	}
	var v apiserver.VerifyAuditOutput
	e.expect(e.call("GET", "/api/v1/audit/verify", e.token["auditor"], nil, &v.Body), http.StatusOK)
	if !v.Body.Valid {
		t.Fatalf("audit chain: %+v", v.Body)
	}
	var page apiserver.AuditListOutput
	e.expect(e.call("GET", "/api/v1/audit?target=jobs:"+j.ID+"&order=asc", e.token["auditor"], nil, &page.Body), http.StatusOK)
	var trail []string
	for _, r := range page.Body.Items {
		trail = append(trail, r.Actor+":"+r.Action+":"+r.Result)
	}
	if !slices.Equal(trail, []string{"admin:create-job:success", "operator:start-job:success", "admin:cutover-job:success"}) {
		t.Errorf("audit trail %v", trail)
	}
}

func writeTree(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compareTrees returns "" when b holds exactly a's regular files and
// directories with the same contents.
func compareTrees(t *testing.T, a, b string) string {
	t.Helper()
	list := func(root string) map[string][]byte {
		out := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.Type().IsRegular() {
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				out[rel] = data
			} else if d.IsDir() {
				out[rel+"/"] = nil
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	la, lb := list(a), list(b)
	for p, da := range la {
		db, ok := lb[p]
		if !ok {
			return "missing " + p
		}
		if !bytes.Equal(da, db) {
			return "content of " + p
		}
	}
	for p := range lb {
		if _, ok := la[p]; !ok {
			return "extra " + p
		}
	}
	return ""
}
