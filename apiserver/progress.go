package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// Progress stream event names.
const (
	EventStatus = "status" // the job's live status changed (data: JobStatus)
	EventState  = "state"  // the job changed state (data: ferry.JobEvent), none missed
	EventEnd    = "end"    // the job reached a terminal state (data: JobStatus); the stream ends
)

// progressPoll is how often the stream asks the engine for the status;
// keepAlive is the longest silence before an unchanged status is resent.
const (
	progressPoll = time.Second
	keepAlive    = 15 * time.Second
)

// ProgressInput selects the job whose progress to follow.
type ProgressInput struct {
	JobIDPath
}

func (s *Server) registerProgress() {
	op := huma.Operation{
		OperationID: "watch-job-progress", Method: http.MethodGet, Path: "/api/v1/jobs/{id}/progress", Tags: []string{"Jobs"},
		Summary: "Follow a job's live progress (server-sent events)",
		Description: "A `status` event carries the job's state and progress (bytes, files, rate, ETA, lag, backlog) each time " +
			"it changes, at least every 15 s; a `state` event carries each recorded state change (a job event), so that " +
			"none is missed between two status samples; an `end` event with the final status closes the stream when the " +
			"job reaches cutover_complete, failed or cancelled.",
		Errors: []int{http.StatusNotFound},
		Responses: map[string]*huma.Response{"200": {Description: "An event stream", Content: map[string]*huma.MediaType{
			"text/event-stream": {Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[JobStatus](), true, "JobStatus")},
		}}},
	}
	register(s, op, policy{Access: AccessPermission, Permission: ferry.PermJobsRead}, s.watchProgress)
	register(s, huma.Operation{OperationID: "get-job-status", Method: http.MethodGet, Path: "/api/v1/jobs/{id}/status", Tags: []string{"Jobs"},
		Summary: "Get a job's live status and progress",
		Description: "The job's state and progress (bytes, files, rate, ETA, lag, backlog) as the running mirror or sync " +
			"activity last reported it; the state stored in the database when the job has no workflow.",
		Errors: []int{http.StatusNotFound}}, policy{Access: AccessPermission, Permission: ferry.PermJobsRead}, s.getJobStatus)
}

// JobStatusOutput is a job's live status.
type JobStatusOutput struct {
	Body *JobStatus
}

func (s *Server) getJobStatus(ctx context.Context, in *JobIDPath) (*JobStatusOutput, error) {
	if _, err := s.db.FindJobByID(ctx, in.ID); err != nil {
		return nil, err
	}
	st, err := s.jobStatus(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &JobStatusOutput{Body: st}, nil
}

func (s *Server) watchProgress(ctx context.Context, in *ProgressInput) (*huma.StreamResponse, error) {
	if _, err := s.db.FindJobByID(ctx, in.ID); err != nil {
		return nil, err
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", "text/event-stream")
		hctx.SetHeader("Cache-Control", "no-cache")
		hctx.SetHeader("X-Accel-Buffering", "no")
		w := hctx.BodyWriter()
		flush := func() {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		ctx := hctx.Context()
		var last []byte
		var lastSent time.Time
		var lastEvent int64
		id := 0
		tick := time.NewTicker(progressPoll)
		defer tick.Stop()
		for {
			// State changes first, from the job's events: the status
			// below is a sample and may skip a short state.
			evs, _, err := s.db.ListJobEvents(ctx, ferry.JobEventFilter{JobID: in.ID, Types: []string{ferry.JobEventState},
				AfterID: lastEvent, Limit: ferry.MaxPageSize})
			if err == nil {
				for _, ev := range evs {
					data, _ := json.Marshal(ev)
					id++
					if writeEvent(w, id, EventState, data) != nil {
						return
					}
					lastEvent = ev.ID
				}
				if len(evs) > 0 {
					flush()
				}
			}
			st, err := s.jobStatus(ctx, in.ID)
			if err != nil {
				if ctx.Err() == nil {
					logFrom(ctx).Warn("job progress", "job", in.ID, "err", err)
				}
				if ferry.ErrorCode(err) == ferry.ENOTFOUND {
					return
				}
			} else {
				data, _ := json.Marshal(st)
				event := EventStatus
				if st.Terminal() {
					event = EventEnd
				}
				if event == EventEnd || string(data) != string(last) || time.Since(lastSent) >= keepAlive {
					id++
					if writeEvent(w, id, event, data) != nil {
						return
					}
					flush()
					last, lastSent = data, time.Now()
				}
				if event == EventEnd {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}}, nil
}

// jobStatus asks the engine for the live status, or reads the last state
// the database holds when there is no engine.
func (s *Server) jobStatus(ctx context.Context, id string) (*JobStatus, error) {
	if s.cfg.Engine != nil {
		st, err := s.cfg.Engine.Status(ctx, id)
		if err == nil {
			return st, nil
		}
		if ferry.ErrorCode(err) != ferry.ENOTFOUND {
			return nil, err
		}
	}
	j, err := s.db.FindJobByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &JobStatus{JobID: j.ID, State: j.State, Reason: j.StateReason, UpdatedAt: j.UpdatedAt}, nil
}

func writeEvent(w io.Writer, id int, event string, data []byte) error {
	_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, event, data)
	return err
}
