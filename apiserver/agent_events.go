package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Agent security event kinds.
const (
	// AgentEventPathRefused: the agent's receiver refused a peer that named
	// a path escaping the job's target root.
	AgentEventPathRefused = "path-refused"
)

// AuditActionPathRefused is the audit action of an AgentEventPathRefused.
const AuditActionPathRefused = "agent-path-refused"

// AgentEvent is a security event an agent reports.
type AgentEvent struct {
	Kind  string    `json:"kind" enum:"path-refused"`
	Time  time.Time `json:"time,omitzero" doc:"When the agent saw it; the server's time when absent"`
	JobID string    `json:"jobId,omitempty" maxLength:"128" doc:"The receive job the event concerns"`
	// Peer is the offending peer's network address and PeerName the common
	// name of its client certificate.
	Peer     string `json:"peer,omitempty" maxLength:"256"`
	PeerName string `json:"peerName,omitempty" maxLength:"256"`
	Root     string `json:"root,omitempty" maxLength:"4096" doc:"The job's target root on the reporting host"`
	Reason   string `json:"reason" maxLength:"4096" doc:"The agent's refusal, quoting the offending path"`
}

// AgentEventsInput is a batch of an agent's security events.
type AgentEventsInput struct {
	Body struct {
		Events []AgentEvent `json:"events" minItems:"1" maxItems:"64"`
	}
}

// AgentEventsOutput counts the audit records written.
type AgentEventsOutput struct {
	Body struct {
		Recorded int `json:"recorded"`
	}
}

func (s *Server) registerAgentEvents() {
	register(s, huma.Operation{OperationID: "agent-events", Method: http.MethodPost, Path: "/api/v1/agents/events", Tags: []string{"Agents"},
		Summary: "Report an agent's security events (appended to the audit log)",
		Description: "Authenticated by the agent's client certificate, like heartbeats. Each event becomes one audit record " +
			"whose actor is the reporting host, target the job, source address the offending peer and result denied."},
		policy{Access: AccessHost, NoAudit: true}, s.agentEvents)
}

func (s *Server) agentEvents(ctx context.Context, in *AgentEventsInput) (*AgentEventsOutput, error) {
	h := stateOf(ctx).host
	if h == nil {
		return nil, errors.New("agent event without host")
	}
	out := &AgentEventsOutput{}
	for _, ev := range in.Body.Events {
		rec := &ferry.AuditRecord{Time: s.now(), Actor: "host:" + h.ID, Action: AuditActionPathRefused,
			Target: "hosts:" + h.ID, SourceAddr: ev.Peer, Result: ferry.AuditDenied, Detail: eventDetail(ev)}
		if ev.JobID != "" {
			rec.Target = "jobs:" + ev.JobID
		}
		if len(rec.Target) > 512 {
			rec.Target = rec.Target[:512]
		}
		if len(rec.SourceAddr) > 256 {
			rec.SourceAddr = rec.SourceAddr[:256]
		}
		if err := s.db.AppendAudit(ctx, rec); err != nil {
			return nil, fmt.Errorf("audit agent event: %w", err)
		}
		out.Body.Recorded++
	}
	return out, nil
}

// eventDetail describes an event with every peer-supplied string quoted,
// so that control characters or a forged separator in a hostile path
// cannot pass for another record's text.
func eventDetail(ev AgentEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "refused: receive job %s stopped", strconv.QuoteToASCII(ev.JobID))
	if ev.PeerName != "" {
		fmt.Fprintf(&b, " from peer %s", strconv.QuoteToASCII(ev.PeerName))
	}
	if !ev.Time.IsZero() {
		fmt.Fprintf(&b, " at %s", ev.Time.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, "; root %s; %s", strconv.QuoteToASCII(ev.Root), strconv.QuoteToASCII(ev.Reason))
	d := b.String()
	if len(d) > 8192 {
		d = d[:8192]
	}
	return d
}

// ReportAgentEvents sends security events to the control plane through
// client (see AgentClient). Returns an *APIError with status 401 when the
// host is unknown or revoked.
func ReportAgentEvents(ctx context.Context, client *http.Client, baseURL string, events []AgentEvent) error {
	var in AgentEventsInput
	in.Body.Events = events
	var out AgentEventsOutput
	if err := postJSON(ctx, client, strings.TrimRight(baseURL, "/")+"/api/v1/agents/events", in.Body, &out.Body); err != nil {
		return fmt.Errorf("agent events: %w", err)
	}
	return nil
}
