package ferry

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Kinds of job events.
const (
	JobEventState    = "state"    // a state change: FromState → ToState
	JobEventAction   = "action"   // a user action accepted or rejected
	JobEventPrecheck = "precheck" // one precheck and its result
	JobEventProgress = "progress" // a progress milestone
	JobEventCompare  = "compare"  // a verify or scheduled compare and its difference report
	JobEventHost     = "host"     // waiting for, or regained, a host
	JobEventError    = "error"    // a recorded error (skipped file, failed hook, …)
	JobEventHook     = "hook"     // a cutover hook or action and its result
)

// JobEvent is one entry of a job's history, kept for the UI and reports.
type JobEvent struct {
	ID        int64     `bun:"id,pk,autoincrement" json:"id"`
	JobID     string    `bun:"job_id,nullzero" json:"jobId"`
	Time      time.Time `bun:"time" json:"time"`
	Type      string    `bun:"type,nullzero" json:"type"`
	FromState JobState  `bun:"from_state" json:"fromState,omitempty"`
	ToState   JobState  `bun:"to_state" json:"toState,omitempty"`
	Actor     string    `bun:"actor" json:"actor,omitempty"` // username, or "system"
	Message   string    `bun:"message" json:"message"`
	// Details is any JSON document: a precheck result, a difference report, …
	Details json.RawMessage `bun:"details" json:"details,omitempty"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (e *JobEvent) Validate() error {
	var fe fieldErrors
	fe.text("jobId", e.JobID, 1, 64)
	fe.text("type", e.Type, 1, 32)
	fe.text("actor", e.Actor, 0, 128)
	fe.text("message", e.Message, 0, 8192)
	fe.time("time", e.Time)
	if e.FromState != "" && !e.FromState.Valid() {
		fe.add("fromState", "unknown state %q", e.FromState)
	}
	if e.ToState != "" && !e.ToState.Valid() {
		fe.add("toState", "unknown state %q", e.ToState)
	}
	if len(e.Details) > 0 && (!json.Valid(e.Details) || !utf8.Valid(e.Details)) {
		fe.add("details", "must be valid JSON")
	}
	return fe.err("job event")
}

// JobEventFilter selects events in ListJobEvents. Zero fields match
// everything; events come oldest first.
type JobEventFilter struct {
	JobID   string
	Types   []string
	Since   time.Time // inclusive
	Until   time.Time // exclusive
	AfterID int64     // only events with a greater ID, for following a stream
	Offset  int
	Limit   int
}
