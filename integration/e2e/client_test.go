package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// api is a user of the public API: a bearer token on the HTTP listener.
type api struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func newAPI(t *testing.T, base string) *api {
	return &api{t: t, base: base, hc: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
}

// do sends a request; it retries while the server is unreachable (it may be
// restarting after a fault) and returns the status and body.
func (a *api) do(method, path string, in any) (int, []byte) {
	a.t.Helper()
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			a.t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
		if err != nil {
			a.t.Fatal(err)
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if a.token != "" {
			req.Header.Set("Authorization", "Bearer "+a.token)
		}
		resp, err := a.hc.Do(req)
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusBadGateway {
				return resp.StatusCode, data
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, data)
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s %s: %v", method, path, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// call expects status want and decodes the body into out.
func (a *api) call(method, path string, in any, want int, out any) {
	a.t.Helper()
	code, data := a.do(method, path, in)
	if code != want {
		a.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}

// login signs in as user and, for a built-in account on its first login,
// changes the password as the server demands.
func (a *api) login(user, password string) {
	a.t.Helper()
	var s struct {
		Token              string `json:"token"`
		MustChangePassword bool   `json:"mustChangePassword"`
	}
	a.call("POST", "/api/v1/auth/login", map[string]string{"username": user, "password": password}, http.StatusOK, &s)
	a.token = s.Token
	if s.MustChangePassword {
		a.call("POST", "/api/v1/auth/password", map[string]string{"currentPassword": password, "newPassword": password + "-E2e!9"}, http.StatusNoContent, nil)
	}
}

// jobStatus is the part of the API's live job status the test reads.
type jobStatus struct {
	State     string `json:"state"`
	LastError string `json:"reason"`
	TestPath  string `json:"testPath"`
	Progress  struct {
		Phase          string  `json:"phase"`
		BytesDone      int64   `json:"bytesDone"`
		BytesTotal     int64   `json:"bytesTotal"`
		BytesSent      int64   `json:"bytesSent"`
		FilesDone      int64   `json:"filesDone"`
		LagSeconds     float64 `json:"lagSeconds"`
		BacklogEntries int64   `json:"backlogEntries"`
		AppliedTotal   int64   `json:"appliedTotal"`
	} `json:"progress"`
	WaitingFor string `json:"waitingFor"`
}

// follower keeps the latest status of a job from its server-sent event
// stream, reconnecting whenever the stream breaks (a restarted server).
type follower struct {
	mu     sync.Mutex
	last   jobStatus // guarded by mu
	states []string  // guarded by mu: every state seen, in order
	cancel context.CancelFunc
}

func (a *api) follow(jobID string) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel}
	a.t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			f.stream(ctx, a, jobID)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return f
}

func (f *follower) stream(ctx context.Context, a *api, jobID string) {
	req, err := http.NewRequestWithContext(ctx, "GET", a.base+"/api/v1/jobs/"+jobID+"/progress", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Transport: a.hc.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data := strings.TrimSpace(strings.TrimPrefix(line, "data:"))
			if event == "status" || event == "end" {
				var st jobStatus
				if json.Unmarshal([]byte(data), &st) == nil {
					f.mu.Lock()
					f.last = st
					if n := len(f.states); st.State != "" && (n == 0 || f.states[n-1] != st.State) {
						f.states = append(f.states, st.State)
					}
					f.mu.Unlock()
				}
			}
		}
	}
}

func (f *follower) status() jobStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// waitState waits until the job is in one of states; a failed or cancelled
// job ends the test.
func (f *follower) waitState(t *testing.T, timeout time.Duration, states ...string) jobStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st := f.status()
		for _, s := range states {
			if st.State == s {
				return st
			}
		}
		if st.State == "failed" || st.State == "cancelled" {
			t.Fatalf("job ended %s: %s", st.State, st.LastError)
		}
		time.Sleep(250 * time.Millisecond)
	}
	st := f.status()
	t.Fatalf("job still %s after %s (want %v): %+v", st.State, timeout, states, st)
	return st
}

// checkJobMetrics asserts that /metrics exports the syncing job's live
// status: its state, that the status was read, and its replication lag
// and backlog.
//
// The live status is a workflow query, which needs a worker: right after a
// fault that killed the worker, a scrape rightly reports
// ferry_job_status_up 0 while the restarted worker replays the workflow.
// The check scrapes until the status is up again (a Prometheus scraping
// every 15 s sees the same), for at most two minutes.
func checkJobMetrics(t *testing.T, a *api, jobID string) {
	t.Helper()
	up := `ferry_job_status_up{job="` + jobID + `"}`
	var series map[string]string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Second) {
		code, body := a.do("GET", "/metrics", nil)
		if code != http.StatusOK {
			t.Fatalf("GET /metrics: %d", code)
		}
		series = map[string]string{}
		for line := range strings.Lines(string(body)) {
			if name, rest, ok := strings.Cut(strings.TrimSpace(line), "{"); ok && strings.Contains(rest, `job="`+jobID+`"`) {
				labels, value, _ := strings.Cut(rest, "} ")
				series[name+"{"+labels+"}"] = value
			}
		}
		if series[up] == "1" || time.Now().After(deadline) {
			break
		}
	}
	want := []string{`ferry_job_status_up{job="` + jobID + `"}`, `ferry_job_sync_lag_seconds{job="` + jobID + `"}`,
		`ferry_job_sync_backlog_records{job="` + jobID + `"}`, `ferry_job_bytes_sent{job="` + jobID + `"}`}
	for _, k := range want {
		if _, ok := series[k]; !ok {
			t.Errorf("/metrics lacks %s (job series: %v)", k, series)
		}
	}
	if v := series[up]; v != "1" {
		t.Errorf("ferry_job_status_up = %q, want 1", v)
	}
	found := false
	for k, v := range series {
		if strings.HasPrefix(k, "ferry_job_state{") && strings.Contains(k, `state="ready_for_cutover"`) && v == "1" {
			found = true
		}
	}
	if !found {
		t.Errorf("/metrics has no ferry_job_state for the job in ready_for_cutover: %v", series)
	}
	t.Logf("job metrics: %v", series)
}
