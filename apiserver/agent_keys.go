package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// JobKeyOutput is a job's payload secret, for the job's own agents.
type JobKeyOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		JobID      string `json:"jobId"`
		Encryption string `json:"encryption" doc:"The job's payload cipher (aes or sm4)"`
		// Key is the secret; never logged, printed or stored by the agent.
		Key []byte `json:"key" doc:"The job's payload secret (base64)"`
	}
}

func (s *Server) registerAgentKeys() {
	register(s, huma.Operation{OperationID: "agent-job-key", Method: http.MethodGet, Path: "/api/v1/agents/jobs/{id}/key", Tags: []string{"Agents"},
		Summary: "Fetch a job's payload encryption secret (the job's source or target agent only)",
		Description: "Authenticated by the agent's client certificate (mutual TLS on the HTTPS listener). " +
			"Only the job's source and target hosts get the key; any other host gets 403. Every call is audited. " +
			"The key is fetched at run time so that it never travels through workflow inputs or histories.",
		Errors: []int{http.StatusForbidden, http.StatusConflict}}, policy{Access: AccessHost, AuditReads: true}, s.agentJobKey)
}

// agentJobKey answers the job's key to the job's own hosts. A job that
// does not exist is refused like another host's job (403), so that hosts
// cannot probe job IDs. Errors never contain the key.
func (s *Server) agentJobKey(ctx context.Context, in *JobIDPath) (*JobKeyOutput, error) {
	h := stateOf(ctx).host
	if h == nil {
		return nil, errors.New("job key request without host")
	}
	setTarget(ctx, "job:%s", in.ID)
	j, err := s.db.FindJobByID(ctx, in.ID)
	if ferry.ErrorCode(err) == ferry.ENOTFOUND || (err == nil && j.SourceHostID != h.ID && j.TargetHostID != h.ID) {
		setDetail(ctx, "host %s is not the source or target of the job", h.ID)
		return nil, problemf(http.StatusForbidden, ferry.EFORBIDDEN, "this host is not the source or target of the job")
	} else if err != nil {
		return nil, err
	}
	if j.Encryption == "" || j.Encryption == ferry.EncryptionNone || len(j.EncryptionKey) == 0 {
		return nil, problemf(http.StatusConflict, ferry.ECONFLICT, "the job has no payload encryption")
	}
	role := "target"
	if j.SourceHostID == h.ID {
		role = "source"
	}
	setDetail(ctx, "payload key issued to the job's %s host", role)
	out := &JobKeyOutput{CacheControl: "no-store"}
	out.Body.JobID, out.Body.Encryption = j.ID, string(j.Encryption)
	out.Body.Key = []byte(j.EncryptionKey)
	return out, nil
}

// JobKey fetches a job's payload secret for the agent whose client
// certificate client presents (see agent-job-key). Errors (never containing
// the key): transport failures, or an *APIError (403 when this host is not
// the job's source or target, 409 when the job is not encrypted).
func JobKey(ctx context.Context, client *http.Client, baseURL, jobID string) ([]byte, error) {
	u := strings.TrimRight(baseURL, "/") + "/api/v1/agents/jobs/" + url.PathEscape(jobID) + "/key"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("job key: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("job key: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("job key: %w", err)
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{}
		if json.Unmarshal(data, &ae.Problem) != nil || ae.Status == 0 {
			ae.Status, ae.Detail = resp.StatusCode, http.StatusText(resp.StatusCode)
		}
		return nil, fmt.Errorf("job key: %w", ae)
	}
	var out JobKeyOutput
	if err := json.Unmarshal(data, &out.Body); err != nil {
		return nil, errors.New("job key: malformed answer from the control plane")
	}
	if len(out.Body.Key) == 0 {
		return nil, errors.New("job key: the control plane returned no key")
	}
	return out.Body.Key, nil
}
