package apiserver

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// HealthOutput is the body of /healthz and /readyz.
type HealthOutput struct {
	Body struct {
		Status string            `json:"status" enum:"ok,unavailable" doc:"ok when the server (and, for readiness, every dependency) works"`
		Checks map[string]string `json:"checks,omitempty" doc:"each dependency and its state: ok or the error"`
	}
}

func (s *Server) registerHealth() {
	register(s, huma.Operation{
		OperationID: "get-health",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Liveness: the server process answers",
		Tags:        []string{"Health"},
	}, policy{Access: AccessPublic}, func(ctx context.Context, _ *struct{}) (*HealthOutput, error) {
		out := &HealthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
	register(s, huma.Operation{
		OperationID: "get-ready",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Summary:     "Readiness: the database and Temporal are reachable",
		Tags:        []string{"Health"},
		Errors:      []int{http.StatusServiceUnavailable},
	}, policy{Access: AccessPublic}, func(ctx context.Context, _ *struct{}) (*HealthOutput, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out := &HealthOutput{}
		out.Body.Status = "ok"
		out.Body.Checks = map[string]string{}
		names := make([]string, 0, len(s.cfg.Ready))
		for n := range s.cfg.Ready {
			names = append(names, n)
		}
		sort.Strings(names)
		var failed []error
		for _, n := range names {
			if err := s.cfg.Ready[n].Ping(ctx); err != nil {
				out.Body.Checks[n] = err.Error()
				failed = append(failed, &huma.ErrorDetail{Location: n, Message: err.Error()})
				continue
			}
			out.Body.Checks[n] = "ok"
		}
		if len(failed) > 0 {
			return nil, huma.Error503ServiceUnavailable("not ready", failed...)
		}
		return out, nil
	})
}
