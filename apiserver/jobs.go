package apiserver

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ferry-migrate/ferry"
)

// HookSpec is a shell command run by an agent.
type HookSpec struct {
	Command        string `json:"command" maxLength:"8192" doc:"Run through /bin/sh -c"`
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty" minimum:"0" maximum:"86400" doc:"0: 10 minutes"`
}

func (h HookSpec) hook() ferry.Hook {
	return ferry.Hook{Command: h.Command, Timeout: seconds(h.TimeoutSeconds)}
}

func hookSpec(h ferry.Hook) HookSpec {
	return HookSpec{Command: h.Command, TimeoutSeconds: int(h.Timeout / time.Second)}
}

// CutoverActionSpec is one post-cutover action.
type CutoverActionSpec struct {
	Name           string `json:"name,omitempty" maxLength:"128"`
	Command        string `json:"command" minLength:"1" maxLength:"8192"`
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty" minimum:"0" maximum:"86400"`
	MustSucceed    bool   `json:"mustSucceed,omitempty" doc:"A failure fails the cutover (and offers rollback)"`
}

// CutoverSpec configures the cutover.
type CutoverSpec struct {
	PreCutoverHook     *HookSpec           `json:"preCutoverHook,omitempty" doc:"Runs on the source before the final sync (stop services)"`
	PostCutoverActions []CutoverActionSpec `json:"postCutoverActions,omitempty" maxItems:"64" doc:"Run in order on the target"`
	ShutdownSource     bool                `json:"shutdownSource,omitempty"`
	ShutdownSourceHook *HookSpec           `json:"shutdownSourceHook,omitempty"`
}

func (c *CutoverSpec) options() ferry.CutoverOptions {
	var o ferry.CutoverOptions
	if c.PreCutoverHook != nil {
		o.PreCutoverHook = c.PreCutoverHook.hook()
	}
	if c.ShutdownSourceHook != nil {
		o.ShutdownSourceHook = c.ShutdownSourceHook.hook()
	}
	o.ShutdownSource = c.ShutdownSource
	for _, a := range c.PostCutoverActions {
		o.PostCutoverActions = append(o.PostCutoverActions, ferry.CutoverAction{Name: a.Name, Command: a.Command,
			Timeout: seconds(a.TimeoutSeconds), MustSucceed: a.MustSucceed})
	}
	return o
}

func cutoverSpec(o ferry.CutoverOptions) CutoverSpec {
	c := CutoverSpec{ShutdownSource: o.ShutdownSource, PostCutoverActions: []CutoverActionSpec{}}
	if o.PreCutoverHook.Command != "" {
		h := hookSpec(o.PreCutoverHook)
		c.PreCutoverHook = &h
	}
	if o.ShutdownSourceHook.Command != "" {
		h := hookSpec(o.ShutdownSourceHook)
		c.ShutdownSourceHook = &h
	}
	for _, a := range o.PostCutoverActions {
		c.PostCutoverActions = append(c.PostCutoverActions, CutoverActionSpec{Name: a.Name, Command: a.Command,
			TimeoutSeconds: int(a.Timeout / time.Second), MustSucceed: a.MustSucceed})
	}
	return c
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// JobOptions are a job's changeable options. In create-job absent fields
// take their defaults; in update-job absent fields are unchanged.
type JobOptions struct {
	Description       *string      `json:"description,omitempty" maxLength:"2048"`
	Excludes          []string     `json:"excludes,omitempty" maxItems:"1024" doc:"Glob patterns relative to each source path"`
	SystemProfile     *bool        `json:"systemProfile,omitempty" doc:"Exclude what a live system must not copy (/proc, /sys, /dev, /run, …)"`
	ChecksumMode      string       `json:"checksumMode,omitempty" enum:"strict,time" doc:"strict: hash blocks; time: size+mtime quick check (default)"`
	ErrorPolicy       string       `json:"errorPolicy,omitempty" enum:"stop,skip" doc:"On an unreadable source file (default stop)"`
	OrphanPolicy      string       `json:"orphanPolicy,omitempty" maxLength:"4101" pattern:"^(keep|delete|move:/.*)$" patternDescription:"keep, delete or move:/absolute/dir" doc:"Target files gone from the source (default keep)"`
	Compression       string       `json:"compression,omitempty" enum:"off,fast,balanced,normal,extreme" doc:"Default balanced"`
	BandwidthSchedule *string      `json:"bandwidthSchedule,omitempty" maxLength:"4096" doc:"Timetable of limits and forbidden windows; empty: unlimited"`
	LagThresholdSecs  *int         `json:"lagThresholdSeconds,omitempty" minimum:"0" maximum:"604800" doc:"Ready for cutover while lag stays below (default 10)"`
	HostOfflineGrace  *int         `json:"hostOfflineGraceSeconds,omitempty" minimum:"0" maximum:"2592000" doc:"How long to wait for an offline host before failing (default 1800)"`
	Cutover           *CutoverSpec `json:"cutover,omitempty"`
}

func (o *JobOptions) apply(j *ferry.Job) {
	if o.Description != nil {
		j.Description = *o.Description
	}
	if o.Excludes != nil {
		j.Excludes = o.Excludes
	}
	if o.SystemProfile != nil {
		j.SystemProfile = *o.SystemProfile
	}
	if o.ChecksumMode != "" {
		j.ChecksumMode = ferry.ChecksumMode(o.ChecksumMode)
	}
	if o.ErrorPolicy != "" {
		j.ErrorPolicy = ferry.ErrorPolicy(o.ErrorPolicy)
	}
	if o.OrphanPolicy != "" {
		j.OrphanPolicy = ferry.OrphanPolicy(o.OrphanPolicy)
	}
	if o.Compression != "" {
		j.Compression = ferry.Compression(o.Compression)
	}
	if o.BandwidthSchedule != nil {
		j.BandwidthSchedule = *o.BandwidthSchedule
	}
	if o.LagThresholdSecs != nil {
		j.LagThreshold = seconds(*o.LagThresholdSecs)
	}
	if o.HostOfflineGrace != nil {
		j.HostOfflineGrace = seconds(*o.HostOfflineGrace)
	}
	if o.Cutover != nil {
		j.Cutover = o.Cutover.options()
	}
}

// live reports whether o changes an option the running workflow uses.
func (o *JobOptions) live() bool {
	return o.BandwidthSchedule != nil || o.LagThresholdSecs != nil || o.HostOfflineGrace != nil || o.Cutover != nil
}

// CreateJobInput is the body of create-job.
type CreateJobInput struct {
	Body struct {
		Name         string   `json:"name" minLength:"1" maxLength:"128"`
		Mode         string   `json:"mode,omitempty" enum:"file,block" doc:"file: a file tree (default); block: a device or image"`
		SourceHostID string   `json:"sourceHostId" pattern:"^[a-z2-7]{16}$" patternDescription:"a host ID"`
		SourcePaths  []string `json:"sourcePaths" minItems:"1" maxItems:"64" doc:"Absolute paths on the source host"`
		TargetHostID string   `json:"targetHostId" pattern:"^[a-z2-7]{16}$" patternDescription:"a host ID"`
		TargetPath   string   `json:"targetPath" minLength:"1" maxLength:"4096" doc:"Absolute path on the target host"`
		Encryption   string   `json:"encryption,omitempty" enum:"none,aes,sm4" doc:"Payload encryption on top of TLS with a per-job key (default none)"`
		JobOptions
	}
}

// UpdateJobInput is the body of update-job.
type UpdateJobInput struct {
	JobIDPath
	Body struct {
		Version int64 `json:"version,omitempty" minimum:"0" doc:"The version read; the update fails with 409 if the job changed since (0: no check)"`
		JobOptions
	}
}

// JobIDPath is a job ID in a path.
type JobIDPath struct {
	ID string `path:"id" pattern:"^[a-z2-7]{16}$" patternDescription:"16-character job ID"`
}

// DeleteJobInput is the input of delete-job.
type DeleteJobInput struct {
	JobIDPath
	RemoveTargetData bool `query:"removeTargetData" doc:"Also delete what the job copied to the target (default: keep it)"`
}

// JobView is a job as the API shows it.
type JobView struct {
	ID                 string         `json:"id"`
	Name               string         `json:"name"`
	Description        string         `json:"description"`
	Mode               ferry.JobMode  `json:"mode"`
	State              ferry.JobState `json:"state"`
	StateReason        string         `json:"stateReason,omitempty"`
	SourceHostID       string         `json:"sourceHostId"`
	SourcePaths        []string       `json:"sourcePaths"`
	TargetHostID       string         `json:"targetHostId"`
	TargetPath         string         `json:"targetPath"`
	Excludes           []string       `json:"excludes"`
	SystemProfile      bool           `json:"systemProfile"`
	ChecksumMode       string         `json:"checksumMode"`
	ErrorPolicy        string         `json:"errorPolicy"`
	OrphanPolicy       string         `json:"orphanPolicy"`
	Compression        string         `json:"compression"`
	Encryption         string         `json:"encryption"`
	BandwidthSchedule  string         `json:"bandwidthSchedule"`
	LagThresholdSecs   int            `json:"lagThresholdSeconds"`
	HostOfflineGraceS  int            `json:"hostOfflineGraceSeconds"`
	Cutover            CutoverSpec    `json:"cutover"`
	CreatedByID        int64          `json:"createdById,omitempty"`
	Version            int64          `json:"version"`
	CreatedAt          time.Time      `json:"createdAt"`
	UpdatedAt          time.Time      `json:"updatedAt"`
	StartedAt          time.Time      `json:"startedAt,omitzero"`
	FinishedAt         time.Time      `json:"finishedAt,omitzero"`
	TemporalURL        string         `json:"temporalUrl,omitempty" doc:"The job's workflow in the Temporal UI"`
	TemporalWorkflowID string         `json:"temporalWorkflowId"`
}

func (s *Server) jobView(j *ferry.Job) JobView {
	return JobView{ID: j.ID, Name: j.Name, Description: j.Description, Mode: j.Mode, State: j.State,
		StateReason: j.StateReason, SourceHostID: j.SourceHostID, SourcePaths: nonNil(j.SourcePaths),
		TargetHostID: j.TargetHostID, TargetPath: j.TargetPath, Excludes: nonNil(j.Excludes),
		SystemProfile: j.SystemProfile, ChecksumMode: string(j.ChecksumMode), ErrorPolicy: string(j.ErrorPolicy),
		OrphanPolicy: string(j.OrphanPolicy), Compression: string(j.Compression), Encryption: string(j.Encryption),
		BandwidthSchedule: j.BandwidthSchedule, LagThresholdSecs: int(j.LagThreshold / time.Second),
		HostOfflineGraceS: int(j.HostOfflineGrace / time.Second), Cutover: cutoverSpec(j.Cutover),
		CreatedByID: j.CreatedByID, Version: j.Version, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, TemporalURL: s.TemporalJobURL(j.ID), TemporalWorkflowID: j.ID}
}

// TemporalJobURL returns the link to the job's workflow in the Temporal UI,
// or "" when no Temporal UI is configured.
func (s *Server) TemporalJobURL(jobID string) string {
	if s.cfg.TemporalUIURL == "" {
		return ""
	}
	return strings.TrimRight(s.cfg.TemporalUIURL, "/") + "/namespaces/" + url.PathEscape(s.cfg.TemporalNamespace) +
		"/workflows/" + url.PathEscape(jobID)
}

// JobOutput is one job.
type JobOutput struct {
	Body JobView
}

// ListJobsInput filters list-jobs.
type ListJobsInput struct {
	PageQuery
	State  []string `query:"state,explode" maxItems:"12" enum:"pending,prechecking,mirroring,syncing,paused,ready_for_cutover,test_cutover,cutting_over,cutover_complete,failed,cancelled,rolled_back" doc:"Only jobs in these states (repeat the parameter)"`
	HostID string   `query:"host" maxLength:"16" doc:"Only jobs whose source or target is this host"`
	Name   string   `query:"name" maxLength:"128" doc:"Substring of name or description"`
}

// JobListOutput is a page of jobs.
type JobListOutput struct {
	Body struct {
		PageInfo
		Items []JobView `json:"items"`
	}
}

// ActionOutput is the answer to a job action.
type ActionOutput struct {
	Body struct {
		JobID  string         `json:"jobId"`
		Action string         `json:"action"`
		State  ferry.JobState `json:"state,omitempty" doc:"The job's state after the action, when known"`
	}
}

// ListJobEventsInput selects a job's events.
type ListJobEventsInput struct {
	JobIDPath
	PageQuery
	AfterID int64    `query:"afterId" minimum:"0" doc:"Only events after this one, for following"`
	Type    []string `query:"type,explode" maxItems:"8" enum:"state,action,precheck,progress,compare,host,error,hook"`
}

// JobEventListOutput is a page of job events.
type JobEventListOutput struct {
	Body struct {
		PageInfo
		Items []*ferry.JobEvent `json:"items"`
	}
}

func (s *Server) registerJobs() {
	tags := []string{"Jobs"}
	read := policy{Access: AccessPermission, Permission: ferry.PermJobsRead}
	manage := policy{Access: AccessPermission, Permission: ferry.PermJobsManage}
	operate := policy{Access: AccessPermission, Permission: ferry.PermJobsOperate}
	register(s, huma.Operation{OperationID: "list-jobs", Method: http.MethodGet, Path: "/api/v1/jobs", Tags: tags,
		Summary: "List jobs, newest first"}, read, s.listJobs)
	register(s, huma.Operation{OperationID: "get-job", Method: http.MethodGet, Path: "/api/v1/jobs/{id}", Tags: tags,
		Summary: "Get a job", Errors: []int{http.StatusNotFound}}, read, s.getJob)
	register(s, huma.Operation{OperationID: "create-job", Method: http.MethodPost, Path: "/api/v1/jobs", Tags: tags,
		Summary: "Create a migration job (state pending)", DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusConflict}}, manage, s.createJob)
	register(s, huma.Operation{OperationID: "update-job", Method: http.MethodPatch, Path: "/api/v1/jobs/{id}", Tags: tags,
		Summary: "Change a job's options", Errors: []int{http.StatusNotFound, http.StatusConflict}}, manage, s.updateJob)
	register(s, huma.Operation{OperationID: "delete-job", Method: http.MethodDelete, Path: "/api/v1/jobs/{id}", Tags: tags,
		Summary: "Delete a job, keeping or removing the target data", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, manage, s.deleteJob)
	register(s, huma.Operation{OperationID: "list-job-events", Method: http.MethodGet, Path: "/api/v1/jobs/{id}/events", Tags: tags,
		Summary: "List a job's events, oldest first", Errors: []int{http.StatusNotFound}}, read, s.listJobEvents)
	for _, action := range JobActions() {
		register(s, huma.Operation{
			OperationID: action + "-job", Method: http.MethodPost, Path: "/api/v1/jobs/{id}/actions/" + action, Tags: tags,
			Summary:     actionSummary(action),
			Description: "Rejected with 409, naming the job's state, when the action is not allowed in it.",
			Errors:      []int{http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable},
		}, operate, func(ctx context.Context, in *JobIDPath) (*ActionOutput, error) {
			return s.jobAction(ctx, in.ID, action)
		})
	}
}

func actionSummary(action string) string {
	switch action {
	case ActionStart:
		return "Start the job: prechecks, then mirror and sync"
	case ActionPause:
		return "Pause replication"
	case ActionResume:
		return "Resume replication"
	case ActionRemirror:
		return "Mirror the whole source again"
	case ActionTestCutover:
		return "Bring up a test copy on the target while replication continues"
	case ActionEndTest:
		return "End the test cutover and discard its copy"
	case ActionCutover:
		return "Cut over to the target"
	case ActionRollback:
		return "Roll back a cutover and return to syncing"
	case ActionCancel:
		return "Cancel the job"
	}
	return action
}

func (s *Server) listJobs(ctx context.Context, in *ListJobsInput) (*JobListOutput, error) {
	f := ferry.JobFilter{HostID: in.HostID, Query: in.Name, Offset: in.Offset, Limit: in.Limit}
	for _, st := range in.State {
		f.States = append(f.States, ferry.JobState(st))
	}
	jobs, total, err := s.db.ListJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &JobListOutput{}
	out.Body.PageInfo = pageInfo(total, in.Offset, in.Limit)
	out.Body.Items = []JobView{}
	for _, j := range jobs {
		out.Body.Items = append(out.Body.Items, s.jobView(j))
	}
	return out, nil
}

func (s *Server) getJob(ctx context.Context, in *JobIDPath) (*JobOutput, error) {
	j, err := s.db.FindJobByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	return &JobOutput{Body: s.jobView(j)}, nil
}

// checkHost returns EINVALID naming field when the host does not exist or
// is revoked.
func (s *Server) checkHost(ctx context.Context, field, id string) error {
	h, err := s.db.FindHostByID(ctx, id)
	if ferry.ErrorCode(err) == ferry.ENOTFOUND {
		return invalidField(field, "no host %q", id)
	} else if err != nil {
		return err
	}
	if !h.RevokedAt.IsZero() {
		return invalidField(field, "host %q is revoked", id)
	}
	return nil
}

func (s *Server) createJob(ctx context.Context, in *CreateJobInput) (*JobOutput, error) {
	b := &in.Body
	j := &ferry.Job{ID: ferry.NewID(), Name: b.Name, Mode: ferry.JobMode(b.Mode), SourceHostID: b.SourceHostID,
		SourcePaths: b.SourcePaths, TargetHostID: b.TargetHostID, TargetPath: b.TargetPath,
		Encryption: ferry.Encryption(b.Encryption), CreatedByID: principalOf(ctx).User.ID}
	setTarget(ctx, "jobs:%s", j.ID)
	b.JobOptions.apply(j)
	j.ApplyDefaults()
	if j.Encryption != ferry.EncryptionNone {
		// A 32-byte random secret per job; the agents derive the cipher
		// key from it.
		j.EncryptionKey = make(ferry.SecretKey, 32)
		_, _ = rand.Read(j.EncryptionKey)
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	if err := s.checkHost(ctx, "sourceHostId", j.SourceHostID); err != nil {
		return nil, err
	}
	if err := s.checkHost(ctx, "targetHostId", j.TargetHostID); err != nil {
		return nil, err
	}
	if err := s.db.CreateJob(ctx, j); err != nil {
		return nil, err
	}
	if s.cfg.Engine != nil {
		if err := s.cfg.Engine.Launch(ctx, j); err != nil {
			if derr := s.db.DeleteJob(context.WithoutCancel(ctx), j.ID); derr != nil {
				s.log.Error("remove job whose workflow did not start", "job", j.ID, "err", derr)
			}
			return nil, fmt.Errorf("start the job's workflow: %w", err)
		}
	}
	return &JobOutput{Body: s.jobView(j)}, nil
}

func (s *Server) updateJob(ctx context.Context, in *UpdateJobInput) (*JobOutput, error) {
	setTarget(ctx, "jobs:%s", in.ID)
	j, err := s.db.FindJobByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if in.Body.Version != 0 {
		j.Version = in.Body.Version // the store refuses a stale version
	}
	in.Body.JobOptions.apply(j)
	if err := j.Validate(); err != nil {
		return nil, err
	}
	if in.Body.JobOptions.live() && s.cfg.Engine != nil && j.State != ferry.JobFailed && j.State != ferry.JobCancelled {
		// The running workflow takes the change first: it refuses it while
		// cutting over, and then nothing is stored either.
		res, err := s.cfg.Engine.UpdateOptions(ctx, j, principalOf(ctx).User.Username)
		switch {
		case ferry.ErrorCode(err) == ferry.ENOTFOUND:
		case err != nil:
			setDetail(ctx, "%s", ferry.ErrorMessage(err))
			return nil, err
		case res.BandwidthError != "":
			setDetail(ctx, "bandwidth schedule not applied to the running transfer: %s", res.BandwidthError)
		case res.BandwidthApplied:
			setDetail(ctx, "bandwidth schedule applied to the running transfer")
		}
	}
	if err := s.db.UpdateJob(ctx, j); err != nil {
		return nil, err
	}
	return s.getJob(ctx, &in.JobIDPath)
}

func (s *Server) deleteJob(ctx context.Context, in *DeleteJobInput) (*struct{}, error) {
	setTarget(ctx, "jobs:%s", in.ID)
	setDetail(ctx, "removeTargetData=%t", in.RemoveTargetData)
	j, err := s.db.FindJobByID(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if j.State == ferry.JobCuttingOver {
		return nil, ferry.Errorf(ferry.ECONFLICT, "job %s is cutting over; wait for the cutover to finish or fail", j.ID)
	}
	if in.RemoveTargetData {
		state := j.State
		if s.cfg.Engine != nil {
			if st, err := s.cfg.Engine.Status(ctx, j.ID); err == nil {
				state = st.State
			}
		}
		if !(&JobStatus{State: state}).Terminal() && state != ferry.JobPending {
			return nil, ferry.Errorf(ferry.ECONFLICT,
				"cannot remove the target data of job %s: job is %s; cancel it first (or delete it keeping the data)", j.ID, state)
		}
	}
	if s.cfg.Engine != nil {
		if err := s.cfg.Engine.Remove(ctx, j, in.RemoveTargetData); err != nil {
			return nil, err
		}
	}
	return nil, s.db.DeleteJob(ctx, j.ID)
}

func (s *Server) jobAction(ctx context.Context, id, action string) (*ActionOutput, error) {
	setTarget(ctx, "jobs:%s", id)
	if _, err := s.db.FindJobByID(ctx, id); err != nil {
		return nil, err
	}
	if s.cfg.Engine == nil {
		return nil, huma.Error503ServiceUnavailable("this server has no workflow engine configured")
	}
	if err := s.cfg.Engine.Action(ctx, id, action, principalOf(ctx).User.Username); err != nil {
		setDetail(ctx, "%s", ferry.ErrorMessage(err))
		return nil, err
	}
	out := &ActionOutput{}
	out.Body.JobID, out.Body.Action = id, action
	if st, err := s.cfg.Engine.Status(ctx, id); err == nil {
		out.Body.State = st.State
	}
	return out, nil
}

func (s *Server) listJobEvents(ctx context.Context, in *ListJobEventsInput) (*JobEventListOutput, error) {
	if _, err := s.db.FindJobByID(ctx, in.ID); err != nil {
		return nil, err
	}
	evs, total, err := s.db.ListJobEvents(ctx, ferry.JobEventFilter{JobID: in.ID, Types: in.Type, AfterID: in.AfterID,
		Offset: in.Offset, Limit: in.Limit})
	if err != nil {
		return nil, err
	}
	out := &JobEventListOutput{}
	out.Body.PageInfo = pageInfo(total, in.Offset, in.Limit)
	out.Body.Items = nonNil(evs)
	return out, nil
}
