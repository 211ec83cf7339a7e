package workflows

import (
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// QueryStatus is the name of the job workflow's status query; it answers a
// Status.
const QueryStatus = "status"

// Status is a job's state as its workflow knows it. It is also what a
// continued-as-new run carries over.
type Status struct {
	JobID      string         `json:"jobId"`
	State      ferry.JobState `json:"state"`
	StateSince time.Time      `json:"stateSince"`
	// PausedFrom is the state resume returns to.
	PausedFrom ferry.JobState `json:"pausedFrom,omitempty"`
	// PendingAction is an accepted action not yet carried out.
	PendingAction string `json:"pendingAction,omitempty"`

	Progress  Progress           `json:"progress"`
	Prechecks []activities.Check `json:"prechecks,omitempty"`
	LastError string             `json:"lastError,omitempty"`
	// WaitingForHosts lists the hosts whose agents are offline while the
	// job needs them.
	WaitingForHosts []HostWait `json:"waitingForHosts,omitempty"`

	TestPath     string                   `json:"testPath,omitempty"`
	PreviousPath string                   `json:"previousPath,omitempty"`
	LastVerify   *activities.VerifyReport `json:"lastVerify,omitempty"`
	Hooks        []HookRun                `json:"hooks,omitempty"`
	// CompareScheduled is true while the compare plan's schedule exists.
	CompareScheduled bool `json:"compareScheduled,omitempty"`
	// Run counts the continue-as-new runs of this job's workflow.
	Run int `json:"run"`
	// MirrorBytesSent and SyncBytesSent add up what the job's finished
	// mirrors and sync sessions sent over the data channel; Progress.BytesSent
	// is their sum (plus a running session's own count).
	MirrorBytesSent int64 `json:"mirrorBytesSent,omitempty"`
	SyncBytesSent   int64 `json:"syncBytesSent,omitempty"`
}

// Progress is a job's phase progress: the mirror's files and bytes, rate
// and ETA, and the sync's lag and backlog.
type Progress struct {
	FilesDone      int64         `json:"filesDone"`
	FilesTotal     int64         `json:"filesTotal"`
	BytesDone      int64         `json:"bytesDone"`
	BytesTotal     int64         `json:"bytesTotal"`
	BytesSent      int64         `json:"bytesSent"`
	RateBytes      float64       `json:"rateBytes"`
	ETA            time.Duration `json:"eta"`
	LagMillis      int64         `json:"lagMs"`
	BacklogRecords int64         `json:"backlogRecords"`
	BacklogBytes   int64         `json:"backlogBytes"`
	AppliedTotal   int64         `json:"appliedTotal"`
	AppliedRate    float64       `json:"appliedRate"` // changes applied per second
}

// HostWait is a host the job waits for, since when.
type HostWait struct {
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// HookRun is one hook's outcome.
type HookRun struct {
	Phase  string                   `json:"phase"`
	Name   string                   `json:"name"`
	Host   string                   `json:"host"`
	Result activities.RunHookResult `json:"result"`
}

// WaitingForHost reports whether the job waits for an offline agent.
func (s Status) WaitingForHost() bool { return len(s.WaitingForHosts) > 0 }
