package apiserver

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// AuditFilterQuery filters the operation log.
type AuditFilterQuery struct {
	Actor  string    `query:"actor" maxLength:"128" doc:"Exact actor name"`
	Action string    `query:"action" maxLength:"128" doc:"Operation ID, e.g. create-job"`
	Target string    `query:"target" maxLength:"512" doc:"Exact target, e.g. jobs:abc"`
	Result string    `query:"result" enum:"success,failure,denied," doc:"Outcome"`
	Since  time.Time `query:"since" doc:"Inclusive lower bound (RFC 3339)"`
	Until  time.Time `query:"until" doc:"Exclusive upper bound (RFC 3339)"`
}

func (q *AuditFilterQuery) filter() ferry.AuditFilter {
	return ferry.AuditFilter{Actor: q.Actor, Action: q.Action, Target: q.Target, Result: q.Result, Since: q.Since, Until: q.Until}
}

// ListAuditInput is the query of list-audit.
type ListAuditInput struct {
	PageQuery
	AuditFilterQuery
	Order string `query:"order" enum:"asc,desc," doc:"Default desc (newest first)"`
}

// AuditListOutput is a page of audit records.
type AuditListOutput struct {
	Body struct {
		PageInfo
		Items []*ferry.AuditRecord `json:"items"`
	}
}

// ExportAuditInput is the query of export-audit.
type ExportAuditInput struct {
	AuditFilterQuery
}

// VerifyAuditOutput is the outcome of verify-audit.
type VerifyAuditOutput struct {
	Body ferry.AuditVerification
}

func (s *Server) registerAudit() {
	tags := []string{"Audit"}
	perm := policy{Access: AccessPermission, Permission: ferry.PermAuditRead}
	register(s, huma.Operation{OperationID: "list-audit", Method: http.MethodGet, Path: "/api/v1/audit", Tags: tags,
		Summary: "List the operation log with filters"}, perm, s.listAudit)
	register(s, huma.Operation{OperationID: "export-audit", Method: http.MethodGet, Path: "/api/v1/audit/export", Tags: tags,
		Summary: "Export the operation log as CSV (oldest first)",
		Responses: map[string]*huma.Response{"200": {Description: "CSV, one record per line",
			Content: map[string]*huma.MediaType{"text/csv": {Schema: &huma.Schema{Type: huma.TypeString}}}}},
	}, perm, s.exportAudit)
	register(s, huma.Operation{OperationID: "verify-audit", Method: http.MethodGet, Path: "/api/v1/audit/verify", Tags: tags,
		Summary:     "Verify the operation log's hash chain",
		Description: "Reports the first record whose content, position or link does not match the chain: an edited or deleted record."},
		perm, s.verifyAudit)
}

func (s *Server) listAudit(ctx context.Context, in *ListAuditInput) (*AuditListOutput, error) {
	f := in.filter()
	f.Ascending = in.Order == "asc"
	f.Offset, f.Limit = in.Offset, in.Limit
	recs, total, err := s.db.ListAudit(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &AuditListOutput{}
	out.Body.PageInfo = pageInfo(total, in.Offset, in.Limit)
	out.Body.Items = nonNil(recs)
	return out, nil
}

var auditCSVHeader = []string{"id", "time", "actor_id", "actor", "action", "target", "source_addr", "result", "detail", "prev_hash", "hash"}

func (s *Server) exportAudit(ctx context.Context, in *ExportAuditInput) (*huma.StreamResponse, error) {
	f := in.filter()
	f.Ascending = true
	f.Limit = ferry.MaxPageSize
	// Read the first page before answering so that a failing database
	// answers with a problem instead of a truncated file.
	first, _, err := s.db.ListAudit(ctx, f)
	if err != nil {
		return nil, err
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", "text/csv; charset=utf-8")
		hctx.SetHeader("Content-Disposition", `attachment; filename="ferry-audit.csv"`)
		w := csv.NewWriter(hctx.BodyWriter())
		_ = w.Write(auditCSVHeader)
		recs := first
		for {
			for _, r := range recs {
				_ = w.Write([]string{strconv.FormatInt(r.ID, 10), r.Time.UTC().Format(time.RFC3339Nano),
					strconv.FormatInt(r.ActorID, 10), csvSafe(r.Actor), r.Action, csvSafe(r.Target), r.SourceAddr,
					r.Result, csvSafe(r.Detail), r.PrevHash, r.Hash})
			}
			w.Flush()
			if len(recs) < f.Limit || w.Error() != nil {
				return
			}
			f.Offset += len(recs)
			recs, _, err = s.db.ListAudit(hctx.Context(), f)
			if err != nil {
				s.log.Error("export audit", "err", err, "offset", f.Offset)
				return
			}
		}
	}}, nil
}

// csvSafe defuses spreadsheet formula injection in user-influenced cells.
func csvSafe(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@') {
		return "'" + v
	}
	return v
}

func (s *Server) verifyAudit(ctx context.Context, _ *struct{}) (*VerifyAuditOutput, error) {
	v, err := s.db.VerifyAuditChain(ctx)
	if err != nil {
		return nil, err
	}
	return &VerifyAuditOutput{Body: v}, nil
}
