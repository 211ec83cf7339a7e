package ferry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Results of an audited action.
const (
	AuditSuccess = "success"
	AuditFailure = "failure" // the action was attempted and failed
	AuditDenied  = "denied"  // the caller lacked the permission
)

// AuditRecord is one entry of the append-only operation log. Records form a
// hash chain: Hash = SHA-256(PrevHash || canonical record), so an edited or
// deleted record breaks verification of the chain.
type AuditRecord struct {
	ID         int64     `bun:"id,pk" json:"id"` // 1, 2, 3, … assigned by AppendAudit
	Time       time.Time `bun:"time" json:"time"`
	ActorID    int64     `bun:"actor_id,nullzero" json:"actorId,omitzero"`
	Actor      string    `bun:"actor" json:"actor"` // username, "anonymous" or "system"
	Action     string    `bun:"action,nullzero" json:"action"`
	Target     string    `bun:"target" json:"target"` // e.g. "job:abc", "user:alice"
	SourceAddr string    `bun:"source_addr" json:"sourceAddr"`
	Result     string    `bun:"result,nullzero" json:"result"`
	Detail     string    `bun:"detail" json:"detail,omitempty"`
	PrevHash   string    `bun:"prev_hash" json:"prevHash"`
	Hash       string    `bun:"hash,nullzero" json:"hash"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (r *AuditRecord) Validate() error {
	var fe fieldErrors
	fe.text("action", r.Action, 1, 128)
	fe.text("actor", r.Actor, 0, 128)
	oneOf(&fe, "result", r.Result, AuditSuccess, AuditFailure, AuditDenied)
	fe.text("target", r.Target, 0, 512)
	fe.text("sourceAddr", r.SourceAddr, 0, 256)
	fe.text("detail", r.Detail, 0, 8192)
	fe.time("time", r.Time)
	return fe.err("audit record")
}

// ComputeHash returns the record's chain hash given the previous record's
// hash ("" for the first record): hex SHA-256 of prevHash followed by the
// canonical JSON array of ID, time (UTC, RFC 3339 with nanoseconds), actor
// ID, actor, action, target, source address, result and detail.
func (r *AuditRecord) ComputeHash(prevHash string) string {
	canonical, _ := json.Marshal([]any{
		r.ID, r.Time.UTC().Format(time.RFC3339Nano), r.ActorID, r.Actor, r.Action,
		r.Target, r.SourceAddr, r.Result, r.Detail,
	})
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditFilter selects records in ListAudit. Zero fields match everything;
// records come newest first unless Ascending.
type AuditFilter struct {
	ActorID   int64
	Actor     string
	Action    string // exact, or a prefix ending in "." (e.g. "jobs.")
	Target    string
	Result    string
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	Ascending bool
	Offset    int
	Limit     int
}

// AuditVerification is the outcome of verifying the audit chain.
type AuditVerification struct {
	Checked int64 `json:"checked"` // records examined
	Valid   bool  `json:"valid"`
	// FirstBrokenID is the first record whose content, position or link to
	// its predecessor does not match the chain; Reason says how.
	FirstBrokenID int64  `json:"firstBrokenId,omitzero"`
	Reason        string `json:"reason,omitempty"`
}
