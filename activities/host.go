package activities

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry"
)

// Host holds the host-bound activities of one agent. `ferry agent` builds one
// with its engine and registers it on the host's task queue (worker.NewHost);
// every method runs on the host it acts on.
type Host struct {
	// ID is the host's ID (its task queue is "host-<ID>").
	ID string
	// AgentVersion is the running agent's version, reported by Precheck.
	AgentVersion string
	// Engine moves data (mirror, sync, verify). Nil makes the data-moving
	// activities fail with a non-retryable EngineUnavailable error; prechecks,
	// hooks and the cutover steps need no engine.
	Engine Engine
	// HeartbeatEvery is how often long activities heartbeat even when the
	// engine reports nothing; zero means 2 s.
	HeartbeatEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Keys fetches the payload secret of encrypted jobs at run time (see
	// KeySource); nil makes encrypted transfers fail non-retryably.
	Keys KeySource
}

func (h *Host) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Host) heartbeatEvery() time.Duration {
	if h.HeartbeatEvery > 0 {
		return h.HeartbeatEvery
	}
	return 2 * time.Second
}

// Engine is the agent's data plane as the activities use it. The agent's
// mirror and sync engines satisfy it through a small adapter in the agent.
//
// Every method stops promptly when ctx is cancelled and then returns an
// error wrapping ctx.Err(). Errors wrapping ErrInvalidRequest are never
// retried; any other error is retried by the workflow's retry policy, and the
// next attempt resumes from the engine's own checkpoint.
type Engine interface {
	// Mirror copies the job's source tree (on this host) to the target agent
	// at req.TargetAddr, into req.TargetPath there. It starts capturing
	// changes of the source tree before it scans, so that a later Sync ships
	// what changed while the mirror ran. Completed files are not sent again on
	// a second call; a partly sent file continues from its last durable
	// offset. report is called about once a second with cumulative progress.
	Mirror(ctx context.Context, req MirrorRequest, report func(MirrorProgress)) (MirrorSummary, error)
	// Sync ships captured changes in order to the target agent and has them
	// applied, until ctx is cancelled (which is how callers stop it: the
	// returned error then wraps context.Canceled) or an error occurs. report
	// is called about once a second. Returns an error wrapping
	// ErrRemirrorRequired when the journal overflowed and changes were lost.
	Sync(ctx context.Context, req SyncRequest, report func(SyncStats)) error
	// FinalSync ships every captured change until the backlog is zero and the
	// target acknowledged it, then returns the final stats.
	FinalSync(ctx context.Context, req SyncRequest, report func(SyncStats)) (SyncStats, error)
	// Verify compares content and metadata of the source tree with the target
	// tree through the target agent and returns the difference report.
	Verify(ctx context.Context, req VerifyRequest) (VerifyReport, error)
}

// Errors an Engine classifies its failures with.
var (
	// ErrInvalidRequest marks a request that cannot succeed on retry (bad
	// path, bad options, refused by the peer).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrRemirrorRequired marks a sync whose journal outgrew its bound: the
	// job must mirror again to converge.
	ErrRemirrorRequired = errors.New("remirror required")
)

// MirrorOptions are a job's transfer options, in the agent's wire spelling.
type MirrorOptions struct {
	Checksum  string   `json:"checksum,omitempty"` // strict | time
	Excludes  []string `json:"excludes,omitempty"`
	Profile   string   `json:"profile,omitempty"` // "" | system
	OnError   string   `json:"onError,omitempty"` // stop | skip
	Orphans   string   `json:"orphans,omitempty"` // keep | delete | move
	OrphanDir string   `json:"orphanDir,omitempty"`
	// BWLimit is the source's bandwidth schedule (bwlimit syntax); "" for
	// none. A running transfer takes a changed one through SetBandwidth.
	BWLimit string `json:"bwLimit,omitempty"`
	// Compress is the payload compression level: off, fast, balanced,
	// normal or extreme ("" = off).
	Compress string `json:"compress,omitempty"`
	// Encrypt is the payload cipher: none, aes or sm4 ("" = none). The key
	// is never part of the options a workflow passes: the source host's
	// activity fetches it (Host.Keys) and sets Key.
	Encrypt string `json:"encrypt,omitempty"`
	// Key is the job's payload secret, filled in on the host at run time.
	// It is never serialised (activity inputs and heartbeats stay keyless)
	// and prints as "[redacted]".
	Key ferry.SecretKey `json:"-"`
}

// MirrorRequest is what Engine.Mirror copies.
type MirrorRequest struct {
	JobID      string
	SourcePath string
	TargetHost string
	TargetAddr string
	TargetPath string // the replica directory on the target (Layout.Replica)
	Options    MirrorOptions
}

// MirrorProgress is a mirror's cumulative progress.
type MirrorProgress struct {
	FilesTotal int64 `json:"filesTotal"`
	BytesTotal int64 `json:"bytesTotal"`
	FilesDone  int64 `json:"filesDone"`
	BytesDone  int64 `json:"bytesDone"`
	WireBytes  int64 `json:"wireBytes"`
	ScanDone   bool  `json:"scanDone"`
}

// MirrorSummary is a finished mirror.
type MirrorSummary struct {
	Files       int64  `json:"files"`
	Bytes       int64  `json:"bytes"`
	BytesSent   int64  `json:"bytesSent"`
	BytesOnWire int64  `json:"bytesOnWire"`
	Skipped     []Skip `json:"skipped,omitempty"`
}

// Skip names an object a mirror left out and why.
type Skip struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// SyncRequest names the job whose changes Sync ships.
type SyncRequest struct {
	JobID      string
	SourcePath string
	TargetHost string
	TargetAddr string
	TargetPath string // the replica directory on the target
	Options    MirrorOptions
}

// SyncStats are replication lag and backlog as the agents measure them.
type SyncStats struct {
	// State is the engine's phase ("mirroring" while a sync session
	// resyncs, "syncing" once it ships the journal); "" when the engine has
	// no phases. Lag counts toward readiness only while syncing.
	State          string  `json:"state,omitempty"`
	LagMillis      int64   `json:"lagMs"`
	BacklogRecords int64   `json:"backlogRecords"`
	BacklogBytes   int64   `json:"backlogBytes"`
	AppliedTotal   int64   `json:"appliedTotal"`
	RateBytes      float64 `json:"rateBytes"`   // applied bytes per second
	RateRecords    float64 `json:"rateRecords"` // applied changes per second
	// BytesSent is what this sync session sent over the data channel:
	// shipped changes and its resync mirrors.
	BytesSent int64 `json:"bytesSent"`
}

// VerifyRequest names the two trees Verify compares.
type VerifyRequest struct {
	JobID      string
	SourcePath string
	TargetHost string
	TargetAddr string
	TargetPath string
	Options    MirrorOptions
}

// VerifyReport is a difference report. Differences is capped (see
// MaxReportedDifferences); Count is the true number.
type VerifyReport struct {
	Identical   bool         `json:"identical"`
	Count       int          `json:"count"`
	Files       int64        `json:"files"`
	Bytes       int64        `json:"bytes"`
	Differences []Difference `json:"differences,omitempty"`
}

// MaxReportedDifferences bounds the differences a report carries, to keep
// workflow histories and job events small.
const MaxReportedDifferences = 200

// Difference is one entry of a difference report.
type Difference struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"` // missing, extra, content, metadata
	Detail string `json:"detail,omitempty"`
}

// Layout names a job's directories on the target host. They are siblings of
// the live target path, on the same filesystem, so that cutover and rollback
// are renames:
//
//	<dir>/.ferry-<job>/replica   the tree mirror and sync write
//	<dir>/.ferry-<job>/previous  the target's contents before cutover
//	<dir>/.ferry-<job>/test      the test-cutover copy
type Layout struct {
	JobID  string
	Target string // the live target path
}

// Staging is the job's directory next to the target path.
func (l Layout) Staging() string {
	return filepath.Join(filepath.Dir(filepath.Clean(l.Target)), ".ferry-"+l.JobID)
}

// Replica is where mirror and sync write.
func (l Layout) Replica() string { return filepath.Join(l.Staging(), "replica") }

// Previous holds the target's contents after cutover, for rollback.
func (l Layout) Previous() string { return filepath.Join(l.Staging(), "previous") }

// Test is the test-cutover copy.
func (l Layout) Test() string { return filepath.Join(l.Staging(), "test") }

// stateFile records the cutover swap, for idempotent retries.
func (l Layout) stateFile() string { return filepath.Join(l.Staging(), "cutover.json") }
