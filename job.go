package ferry

import (
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// JobMode says what a job copies: a file tree (byte level) or a whole disk
// or image file (block level).
type JobMode string

const (
	JobModeFile  JobMode = "file"
	JobModeBlock JobMode = "block"
)

// ChecksumMode says how the mirror finds what differs.
type ChecksumMode string

const (
	// ChecksumStrict hashes blocks on both sides and sends only differing blocks.
	ChecksumStrict ChecksumMode = "strict"
	// ChecksumTime trusts equal size and mtime; strict only when they differ.
	ChecksumTime ChecksumMode = "time"
)

// ErrorPolicy says what happens on an unreadable source file.
type ErrorPolicy string

const (
	ErrorStop ErrorPolicy = "stop" // fail the job
	ErrorSkip ErrorPolicy = "skip" // record it as a job event and go on
)

// OrphanPolicy says what happens to target files gone from the source:
// "keep", "delete" or "move:DIR" (DIR an absolute path on the target host).
type OrphanPolicy string

const (
	OrphanKeep   OrphanPolicy = "keep"
	OrphanDelete OrphanPolicy = "delete"
	orphanMove                = "move:"
)

// OrphanMoveTo returns the policy that moves orphans into dir.
func OrphanMoveTo(dir string) OrphanPolicy { return OrphanPolicy(orphanMove + dir) }

// MoveDir returns DIR of a "move:DIR" policy and whether p is one.
func (p OrphanPolicy) MoveDir() (string, bool) {
	return strings.CutPrefix(string(p), orphanMove)
}

// Compression is the payload compression level (zstd); incompressible data
// goes raw whatever the level.
type Compression string

const (
	CompressionOff      Compression = "off"
	CompressionFast     Compression = "fast"
	CompressionBalanced Compression = "balanced"
	CompressionNormal   Compression = "normal"
	CompressionExtreme  Compression = "extreme"
)

// Encryption is the payload encryption on top of TLS, with a per-job key.
type Encryption string

const (
	EncryptionNone Encryption = "none"
	EncryptionAES  Encryption = "aes" // AES-256-GCM
	EncryptionSM4  Encryption = "sm4" // SM4-GCM
)

// Limits of a job's encryption secret. The cipher keys are derived from it
// (HKDF with a per-transfer salt), so any length in range serves both
// ciphers.
const (
	MinEncryptionKeySize = 16
	MaxEncryptionKeySize = 1024
)

// SecretKey is key material. It prints, logs and text/JSON-encodes as
// "[redacted]"; code that must hand the key on (to an agent, over the
// mutually authenticated data channel) converts it with []byte(k). Job
// excludes it from JSON, so it never lands in Temporal histories or API
// responses.
type SecretKey []byte

func (SecretKey) String() string                 { return "[redacted]" }
func (SecretKey) GoString() string               { return `ferry.SecretKey("[redacted]")` }
func (SecretKey) LogValue() slog.Value           { return slog.StringValue("[redacted]") }
func (k SecretKey) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Hook is a shell command run by an agent (through /bin/sh -c).
type Hook struct {
	Command string        `json:"command"`
	Timeout time.Duration `json:"timeout,omitempty"` // 0: DefaultHookTimeout
}

// DefaultHookTimeout bounds a hook or action without its own timeout.
const DefaultHookTimeout = 10 * time.Minute

// CutoverAction is one command run on the target after the tree is in place.
type CutoverAction struct {
	Name    string        `json:"name"`
	Command string        `json:"command"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// MustSucceed fails the cutover (and offers rollback) when the action
	// fails; otherwise its failure is recorded and the next action runs.
	MustSucceed bool `json:"mustSucceed"`
}

// CutoverOptions configure the cutover of a job.
type CutoverOptions struct {
	// PreCutoverHook runs on the source before the final sync, typically to
	// stop its services.
	PreCutoverHook Hook `json:"preCutoverHook,omitzero"`
	// PostCutoverActions run in order on the target once the tree is in place.
	PostCutoverActions []CutoverAction `json:"postCutoverActions,omitempty"`
	// ShutdownSource runs ShutdownSourceHook on the source after a
	// successful cutover.
	ShutdownSource     bool `json:"shutdownSource"`
	ShutdownSourceHook Hook `json:"shutdownSourceHook,omitzero"`
}

// Job is one migration from a source host to a target host. Its ID is the ID
// of the Temporal workflow that runs it.
type Job struct {
	ID          string  `bun:"id,pk" json:"id"`
	Name        string  `bun:"name,nullzero" json:"name"`
	Description string  `bun:"description" json:"description"`
	Mode        JobMode `bun:"mode,nullzero" json:"mode"`

	// State is the last state the workflow reported; StateReason says why
	// (the failure, the host waited for, …).
	State       JobState `bun:"state,nullzero" json:"state"`
	StateReason string   `bun:"state_reason" json:"stateReason,omitempty"`

	SourceHostID  string   `bun:"source_host_id,nullzero" json:"sourceHostId"`
	SourcePaths   []string `bun:"source_paths" json:"sourcePaths"`
	TargetHostID  string   `bun:"target_host_id,nullzero" json:"targetHostId"`
	TargetPath    string   `bun:"target_path,nullzero" json:"targetPath"`
	Excludes      []string `bun:"excludes" json:"excludes"`
	SystemProfile bool     `bun:"system_profile" json:"systemProfile"` // exclude what a live system must not copy (/proc, /sys, /dev, /run, …)

	ChecksumMode ChecksumMode `bun:"checksum_mode,nullzero" json:"checksumMode"`
	ErrorPolicy  ErrorPolicy  `bun:"error_policy,nullzero" json:"errorPolicy"`
	OrphanPolicy OrphanPolicy `bun:"orphan_policy,nullzero" json:"orphanPolicy"`
	Compression  Compression  `bun:"compression,nullzero" json:"compression"`
	Encryption   Encryption   `bun:"encryption,nullzero" json:"encryption"`
	// EncryptionKey is never serialised to JSON nor logged.
	EncryptionKey SecretKey `bun:"encryption_key" json:"-"`

	// BandwidthSchedule is a timetable of limits and forbidden windows,
	// parsed by the agent's limiter; "" means unlimited.
	BandwidthSchedule string `bun:"bandwidth_schedule" json:"bandwidthSchedule"`
	// LagThreshold: the job is ready for cutover while lag stays below it.
	LagThreshold time.Duration `bun:"lag_threshold_ns" json:"lagThreshold"`
	// HostOfflineGrace: how long the job waits for an offline host before
	// it fails.
	HostOfflineGrace time.Duration `bun:"host_offline_grace_ns" json:"hostOfflineGrace"`

	Cutover CutoverOptions `bun:"cutover" json:"cutover"`

	CreatedByID int64 `bun:"created_by_id,nullzero" json:"createdById,omitzero"`
	// Version increases with every UpdateJob; an update carrying an older
	// version fails with ECONFLICT.
	Version    int64     `bun:"version" json:"version"`
	CreatedAt  time.Time `bun:"created_at" json:"createdAt"`
	UpdatedAt  time.Time `bun:"updated_at" json:"updatedAt"`
	StartedAt  time.Time `bun:"started_at,nullzero" json:"startedAt,omitzero"`
	FinishedAt time.Time `bun:"finished_at,nullzero" json:"finishedAt,omitzero"`
}

// Default job options.
const (
	DefaultLagThreshold     = 10 * time.Second
	DefaultHostOfflineGrace = 30 * time.Minute
)

// ApplyDefaults fills every unset option with its default.
func (j *Job) ApplyDefaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set((*string)(&j.Mode), string(JobModeFile))
	set((*string)(&j.State), string(JobPending))
	set((*string)(&j.ChecksumMode), string(ChecksumTime))
	set((*string)(&j.ErrorPolicy), string(ErrorStop))
	set((*string)(&j.OrphanPolicy), string(OrphanKeep))
	set((*string)(&j.Compression), string(CompressionBalanced))
	set((*string)(&j.Encryption), string(EncryptionNone))
	if j.LagThreshold == 0 {
		j.LagThreshold = DefaultLagThreshold
	}
	if j.HostOfflineGrace == 0 {
		j.HostOfflineGrace = DefaultHostOfflineGrace
	}
}

// LogValue keeps the job's key and hooks out of logs.
func (j *Job) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", j.ID), slog.String("name", j.Name),
		slog.String("state", string(j.State)),
		slog.String("source", j.SourceHostID), slog.String("target", j.TargetHostID),
	)
}

// Validate returns EINVALID with one FieldError per invalid field.
func (j *Job) Validate() error {
	var fe fieldErrors
	fe.text("id", j.ID, 0, 64)
	fe.text("name", j.Name, 1, 128)
	fe.text("description", j.Description, 0, 2048)
	fe.text("stateReason", j.StateReason, 0, 8192)
	oneOf(&fe, "mode", j.Mode, JobModeFile, JobModeBlock)
	if !j.State.Valid() {
		fe.add("state", "unknown state %q", j.State)
	}
	fe.text("sourceHostId", j.SourceHostID, 1, 64)
	fe.text("targetHostId", j.TargetHostID, 1, 64)
	switch {
	case len(j.SourcePaths) == 0:
		fe.add("sourcePaths", "at least one path is required")
	case len(j.SourcePaths) > 64:
		fe.add("sourcePaths", "at most 64 paths")
	case j.Mode == JobModeBlock && len(j.SourcePaths) != 1:
		fe.add("sourcePaths", "a block-level job copies exactly one device or image")
	}
	for i, p := range j.SourcePaths {
		if msg := absPath(p); msg != "" {
			fe.add(indexed("sourcePaths", i), "%s", msg)
		} else if slices.Index(j.SourcePaths, p) != i {
			fe.add(indexed("sourcePaths", i), "duplicate path %q", p)
		}
	}
	if msg := absPath(j.TargetPath); msg != "" {
		fe.add("targetPath", "%s", msg)
	}
	if len(j.Excludes) > 1024 {
		fe.add("excludes", "at most 1024 patterns")
	}
	for i, x := range j.Excludes {
		fe.text(indexed("excludes", i), x, 1, 1024)
	}
	oneOf(&fe, "checksumMode", j.ChecksumMode, ChecksumStrict, ChecksumTime)
	oneOf(&fe, "errorPolicy", j.ErrorPolicy, ErrorStop, ErrorSkip)
	if dir, ok := j.OrphanPolicy.MoveDir(); ok {
		if msg := absPath(dir); msg != "" {
			fe.add("orphanPolicy", "move directory %s", msg)
		} else if within(dir, j.TargetPath) {
			fe.add("orphanPolicy", "move directory must lie outside the target path")
		}
	} else if j.OrphanPolicy != OrphanKeep && j.OrphanPolicy != OrphanDelete {
		fe.add("orphanPolicy", "%q is not one of keep, delete, move:DIR", j.OrphanPolicy)
	}
	oneOf(&fe, "compression", j.Compression,
		CompressionOff, CompressionFast, CompressionBalanced, CompressionNormal, CompressionExtreme)
	if oneOf(&fe, "encryption", j.Encryption, EncryptionNone, EncryptionAES, EncryptionSM4) {
		switch n := len(j.EncryptionKey); {
		case j.Encryption == EncryptionNone && n != 0:
			fe.add("encryptionKey", "must be empty without encryption")
		case j.Encryption != EncryptionNone && (n < MinEncryptionKeySize || n > MaxEncryptionKeySize):
			fe.add("encryptionKey", "%s needs a secret of %d to %d bytes", j.Encryption, MinEncryptionKeySize, MaxEncryptionKeySize)
		}
	}
	fe.text("bandwidthSchedule", j.BandwidthSchedule, 0, 4096)
	if j.LagThreshold < 0 {
		fe.add("lagThreshold", "must not be negative")
	}
	if j.HostOfflineGrace < 0 {
		fe.add("hostOfflineGrace", "must not be negative")
	}
	j.Cutover.validate(&fe)
	return fe.err("job")
}

func (c *CutoverOptions) validate(fe *fieldErrors) {
	c.PreCutoverHook.validate(fe, "cutover.preCutoverHook", false)
	c.ShutdownSourceHook.validate(fe, "cutover.shutdownSourceHook", false)
	if len(c.PostCutoverActions) > 64 {
		fe.add("cutover.postCutoverActions", "at most 64 actions")
	}
	for i, a := range c.PostCutoverActions {
		field := indexed("cutover.postCutoverActions", i)
		fe.text(field+".name", a.Name, 0, 128)
		Hook{Command: a.Command, Timeout: a.Timeout}.validate(fe, field, true)
	}
}

func (h Hook) validate(fe *fieldErrors, field string, required bool) {
	if required {
		fe.text(field+".command", h.Command, 1, 8192)
	} else {
		fe.text(field+".command", h.Command, 0, 8192)
	}
	if h.Timeout < 0 {
		fe.add(field+".timeout", "must not be negative")
	}
}

// JobFilter selects jobs in ListJobs. Zero fields match everything; jobs
// come newest first.
type JobFilter struct {
	States       []JobState
	HostID       string // source or target
	SourceHostID string
	TargetHostID string
	Query        string // substring of name or description
	CreatedByID  int64
	Offset       int
	Limit        int
}

// oneOf adds a field error unless v is one of allowed; it reports whether v
// was allowed.
func oneOf[T ~string](fe *fieldErrors, field string, v T, allowed ...T) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	if v == "" {
		fe.add(field, "is required (one of %s)", strings.Join(names, ", "))
	} else {
		fe.add(field, "%q is not one of %s", v, strings.Join(names, ", "))
	}
	return false
}

// absPath says why p is not a clean absolute POSIX path, or "" when it is.
func absPath(p string) string {
	switch {
	case p == "":
		return "is required"
	case len(p) > 4096 || strings.ContainsRune(p, 0) || !utf8.ValidString(p):
		return "must be valid UTF-8 of at most 4096 bytes without NUL"
	case !path.IsAbs(p):
		return "must be an absolute path"
	case path.Clean(p) != p:
		return "must be a clean path (no '..', '.', '//' or trailing '/')"
	}
	return ""
}

// within reports whether p is dir or lies under it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
