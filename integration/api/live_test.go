package api_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/apiserver"
	"github.com/ferry-migrate/ferry/integration/harness"
	"github.com/ferry-migrate/ferry/workflows"
)

// statusStream collects the status events of a job's SSE stream until ctx
// ends or the stream does.
type statusStream struct {
	mu  sync.Mutex
	all []apiserver.JobStatus
}

func (s *statusStream) follow(ctx context.Context, t *testing.T, e *env, jobID, token string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/jobs/"+jobID+"/progress", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.Errorf("progress stream: %v", err)
		}
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event != apiserver.EventState {
			var st apiserver.JobStatus
			if json.Unmarshal([]byte(v), &st) == nil {
				s.mu.Lock()
				s.all = append(s.all, st)
				s.mu.Unlock()
			}
		}
	}
}

// midMirror returns the first streamed status that shows a mirror under
// way: some but not all bytes done, with a rate.
func (s *statusStream) midMirror() (apiserver.JobStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.all {
		p := st.Progress
		if st.State == ferry.JobMirroring && p.BytesDone > 0 && p.BytesDone < p.BytesTotal && p.RateBytesPerS > 0 {
			return st, true
		}
	}
	return apiserver.JobStatus{}, false
}

// TestLiveProgressOptionsAndRemoveData runs a job whose mirror is held to
// 1 MiB/s by its bandwidth schedule:
//   - the SSE stream and GET /status show the mirror's bytes and
//     rate while the Mirror activity runs (heartbeat progress, not only the
//     workflow's own updates);
//   - PATCH bandwidthSchedule=off reaches the running transfer: the rest
//     (far more than the old limit allows in the time) arrives at once;
//   - removing the target data is refused while the job runs and, once it
//     is cancelled, delete-job?removeTargetData=true removes the job's
//     staging directory on the target host.
func TestLiveProgressOptionsAndRemoveData(t *testing.T) {
	harness.Env(t, "FERRY_TEST_TEMPORAL_ADDR")
	eng := &lazyEngine{}
	e := newEnv(t, options{engine: eng})
	te := temporalEngine(t, e.db)
	eng.JobEngine = te
	src := e.startAgent(te, "live-src")
	dst := e.startAgent(te, "live-dst")
	te.TargetAddr = func(_ context.Context, j *ferry.Job) (string, error) { return dst.addr, nil }
	te.Tune = func(s *workflows.JobSpec) {
		s.ReadyStableFor, s.HostProbe, s.HeartbeatTimeout = time.Second, 3*time.Second, 2*time.Second
		s.SyncWindow, s.RollbackWindow = 5*time.Second, time.Hour
	}
	// 32 MiB: 32 s at 1 MiB/s. The mirror counts a file's bytes done when
	// the file is complete, so many small files show steady progress.
	const fileSize, files = 256 << 10, 128
	srcPath, dstPath := filepath.Join(src.root, "data"), filepath.Join(dst.root, "data")
	for i := range files {
		data := make([]byte, fileSize)
		rand.Read(data)
		writeTree(t, filepath.Join(srcPath, fmt.Sprintf("d%d/f%03d.bin", i%8, i)), data)
	}

	var j apiserver.JobView
	e.expect(e.call("POST", "/api/v1/jobs", e.token["admin"], map[string]any{"name": "live", "sourceHostId": src.en.HostID,
		"sourcePaths": []string{srcPath}, "targetHostId": dst.en.HostID, "targetPath": dstPath, "lagThresholdSeconds": 5,
		"bandwidthSchedule": "1M"}, &j), http.StatusCreated)
	t.Cleanup(func() { te.Client.TerminateWorkflow(context.Background(), j.ID, "", "test ended") })
	ctx, cancel := context.WithCancel(context.Background())
	var stream statusStream
	streamDone := make(chan struct{})
	go func() { stream.follow(ctx, t, e, j.ID, e.token["operator"]); close(streamDone) }()
	t.Cleanup(func() { cancel(); <-streamDone })

	e.expect(e.call("POST", "/api/v1/jobs/"+j.ID+"/actions/start", e.token["operator"], nil, nil), http.StatusOK)
	var mid apiserver.JobStatus
	for deadline := time.Now().Add(25 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var ok bool
		if mid, ok = stream.midMirror(); ok {
			break
		}
		if time.Now().After(deadline) {
			st, err := te.Status(context.Background(), j.ID)
			t.Fatalf("no live mirror progress on the stream in 25 s; status now %+v %v", st, err)
		}
	}
	p := mid.Progress
	t.Logf("streamed mid-mirror: %d/%d bytes, %d/%d files, %.0f B/s, ETA %.0f s", p.BytesDone, p.BytesTotal,
		p.FilesDone, p.FilesTotal, p.RateBytesPerS, p.ETASeconds)
	if p.BytesTotal != fileSize*files || p.Phase != "mirror" || p.RateBytesPerS > 3<<20 {
		t.Errorf("mid-mirror progress %+v (total want %d, rate at most ~1 MiB/s)", p, fileSize*files)
	}
	var st apiserver.JobStatus
	e.expect(e.call("GET", "/api/v1/jobs/"+j.ID+"/status", e.token["operator"], nil, &st), http.StatusOK)
	if st.State != ferry.JobMirroring || st.Progress.BytesDone == 0 || st.Progress.BytesTotal != fileSize*files {
		t.Errorf("GET status without live bytes: %+v", st)
	}

	// Lift the limit while the mirror runs: the rest arrives well before
	// 1 MiB/s could carry it.
	lifted := time.Now()
	var got apiserver.JobView
	e.expect(e.call("PATCH", "/api/v1/jobs/"+j.ID, e.token["admin"], map[string]any{"bandwidthSchedule": "off"}, &got), http.StatusOK)
	if got.BandwidthSchedule != "off" {
		t.Errorf("stored schedule %q", got.BandwidthSchedule)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		st, err := te.Status(context.Background(), j.ID)
		if err == nil && st.State != ferry.JobMirroring && st.State != ferry.JobPaused && st.State != ferry.JobPrechecking {
			t.Logf("mirror finished %s after the limit was lifted (state %s)", time.Since(lifted).Round(100*time.Millisecond), st.State)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror still running 20 s after the limit was lifted: %+v %v", st, err)
		}
	}
	if b := e.expect(e.call("GET", "/api/v1/jobs/"+j.ID+"/events?type=action", e.token["operator"], nil, nil), http.StatusOK); !strings.Contains(b, `bandwidth schedule \"off\"`) || !strings.Contains(b, "the running transfer follows") {
		t.Errorf("no job event records the options change: %s", b)
	}

	// The target data goes only with a job that no longer runs.
	staging := filepath.Join(dst.root, ".ferry-"+j.ID)
	if _, err := os.Stat(staging); err != nil {
		t.Fatalf("staging directory on the target: %v", err)
	}
	r := e.call("DELETE", "/api/v1/jobs/"+j.ID+"?removeTargetData=true", e.token["admin"], nil, nil)
	if r.code != http.StatusConflict {
		t.Fatalf("removing a running job's data: %d %s", r.code, r.body)
	}
	e.expect(e.call("POST", "/api/v1/jobs/"+j.ID+"/actions/cancel", e.token["operator"], nil, nil), http.StatusOK)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if st, err := te.Status(context.Background(), j.ID); err == nil && st.State == ferry.JobCancelled {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("job not cancelled: %+v %v", st, err)
		}
	}
	e.expect(e.call("DELETE", "/api/v1/jobs/"+j.ID+"?removeTargetData=true", e.token["admin"], nil, nil), http.StatusNoContent)
	if _, err := os.Stat(staging); !os.IsNotExist(err) {
		t.Errorf("staging directory still there after delete with removeTargetData: %v", err)
	}
	if _, err := os.Stat(srcPath); err != nil {
		t.Errorf("source touched: %v", err)
	}
	e.expect(e.call("GET", "/api/v1/jobs/"+j.ID, e.token["admin"], nil, nil), http.StatusNotFound)
}
