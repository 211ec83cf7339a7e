package ferry

import (
	"strings"
	"time"
)

// AlarmKind is the condition an alarm rule watches.
type AlarmKind string

const (
	AlarmJobFailed   AlarmKind = "job_failed"
	AlarmLagAbove    AlarmKind = "lag_above"    // Threshold in seconds
	AlarmHostOffline AlarmKind = "host_offline" // For: how long offline
	AlarmDiskAbove   AlarmKind = "disk_above"   // Threshold in percent used
	AlarmStalled     AlarmKind = "stalled"      // For: how long without progress
)

// Severity of an alarm.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Notification channel types.
const (
	ChannelEmail   = "email"
	ChannelSMS     = "sms"
	ChannelWebhook = "webhook"
)

// AlarmChannel is one destination for an alarm's notices.
type AlarmChannel struct {
	Type     string `json:"type"`               // email, sms or webhook
	Target   string `json:"target"`             // address, phone number or URL
	Provider string `json:"provider,omitempty"` // SMS provider name
}

// AlarmRule raises an alarm when its condition holds for a subject (a job
// or a host), repeats the notice every RepeatInterval while it lasts and
// optionally sends a recovery notice.
type AlarmRule struct {
	ID        int64         `bun:"id,pk,autoincrement" json:"id"`
	Name      string        `bun:"name,nullzero" json:"name"`
	Kind      AlarmKind     `bun:"kind,nullzero" json:"kind"`
	Enabled   bool          `bun:"enabled" json:"enabled"`
	Threshold float64       `bun:"threshold" json:"threshold"`
	For       time.Duration `bun:"for_ns" json:"for"`
	// JobID and HostID narrow the rule to one job or host; empty: all.
	JobID          string         `bun:"job_id,nullzero" json:"jobId,omitempty"`
	HostID         string         `bun:"host_id,nullzero" json:"hostId,omitempty"`
	Severity       Severity       `bun:"severity,nullzero" json:"severity"`
	Channels       []AlarmChannel `bun:"channels" json:"channels"`
	RepeatInterval time.Duration  `bun:"repeat_interval_ns" json:"repeatInterval"` // 0: notify once
	NotifyRecovery bool           `bun:"notify_recovery" json:"notifyRecovery"`
	CreatedAt      time.Time      `bun:"created_at" json:"createdAt"`
	UpdatedAt      time.Time      `bun:"updated_at" json:"updatedAt"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (r *AlarmRule) Validate() error {
	var fe fieldErrors
	fe.text("name", r.Name, 1, 128)
	oneOf(&fe, "kind", r.Kind, AlarmJobFailed, AlarmLagAbove, AlarmHostOffline, AlarmDiskAbove, AlarmStalled)
	fe.text("jobId", r.JobID, 0, 64)
	fe.text("hostId", r.HostID, 0, 64)
	switch r.Kind {
	case AlarmLagAbove:
		if r.Threshold <= 0 {
			fe.add("threshold", "lag threshold must be positive seconds")
		}
	case AlarmDiskAbove:
		if r.Threshold <= 0 || r.Threshold > 100 {
			fe.add("threshold", "disk threshold must be a percentage in (0, 100]")
		}
	case AlarmStalled:
		if r.For <= 0 {
			fe.add("for", "stall duration must be positive")
		}
	}
	if r.For < 0 {
		fe.add("for", "must not be negative")
	}
	oneOf(&fe, "severity", r.Severity, SeverityInfo, SeverityWarning, SeverityCritical)
	for i, c := range r.Channels {
		field := indexed("channels", i)
		fe.text(field+".target", c.Target, 0, 2048)
		fe.text(field+".provider", c.Provider, 0, 64)
		switch c.Type {
		case ChannelEmail:
			if !strings.Contains(c.Target, "@") {
				fe.add(field+".target", "must be an e-mail address")
			}
		case ChannelSMS:
			if c.Target == "" {
				fe.add(field+".target", "must be a phone number")
			}
		case ChannelWebhook:
			if !strings.HasPrefix(c.Target, "http://") && !strings.HasPrefix(c.Target, "https://") {
				fe.add(field+".target", "must be an http(s) URL")
			}
		default:
			fe.add(field+".type", "%q is not one of email, sms, webhook", c.Type)
		}
	}
	if r.RepeatInterval < 0 {
		fe.add("repeatInterval", "must not be negative")
	}
	return fe.err("alarm rule")
}

// AlarmState is whether an alarm still holds.
type AlarmState string

const (
	AlarmFiring    AlarmState = "firing"
	AlarmRecovered AlarmState = "recovered"
)

// AlarmRecord is one occurrence of an alarm for one subject. At most one
// record per rule and subject is firing at a time.
type AlarmRecord struct {
	ID             int64      `bun:"id,pk,autoincrement" json:"id"`
	RuleID         int64      `bun:"rule_id,nullzero" json:"ruleId,omitzero"` // zero once the rule is deleted
	RuleName       string     `bun:"rule_name" json:"ruleName"`
	Kind           AlarmKind  `bun:"kind,nullzero" json:"kind"`
	Severity       Severity   `bun:"severity,nullzero" json:"severity"`
	Subject        string     `bun:"subject,nullzero" json:"subject"` // "job:ID" or "host:ID"
	State          AlarmState `bun:"state,nullzero" json:"state"`
	Value          float64    `bun:"value" json:"value"`
	Message        string     `bun:"message" json:"message"`
	FiredAt        time.Time  `bun:"fired_at" json:"firedAt"`
	LastNotifiedAt time.Time  `bun:"last_notified_at,nullzero" json:"lastNotifiedAt,omitzero"`
	NotifyCount    int        `bun:"notify_count" json:"notifyCount"`
	RecoveredAt    time.Time  `bun:"recovered_at,nullzero" json:"recoveredAt,omitzero"`
	AcknowledgedAt time.Time  `bun:"acknowledged_at,nullzero" json:"acknowledgedAt,omitzero"`
	AcknowledgedBy string     `bun:"acknowledged_by" json:"acknowledgedBy,omitempty"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (r *AlarmRecord) Validate() error {
	var fe fieldErrors
	oneOf(&fe, "kind", r.Kind, AlarmJobFailed, AlarmLagAbove, AlarmHostOffline, AlarmDiskAbove, AlarmStalled)
	oneOf(&fe, "severity", r.Severity, SeverityInfo, SeverityWarning, SeverityCritical)
	oneOf(&fe, "state", r.State, AlarmFiring, AlarmRecovered)
	fe.text("subject", r.Subject, 1, 256)
	fe.text("ruleName", r.RuleName, 0, 128)
	fe.text("message", r.Message, 0, 8192)
	fe.text("acknowledgedBy", r.AcknowledgedBy, 0, 128)
	if r.FiredAt.IsZero() {
		fe.add("firedAt", "is required")
	}
	fe.time("firedAt", r.FiredAt)
	return fe.err("alarm record")
}

// AlarmRecordFilter selects records in ListAlarmRecords. Zero fields match
// everything; records come newest first.
type AlarmRecordFilter struct {
	RuleID       int64
	State        AlarmState
	Subject      string
	Acknowledged *bool
	Since        time.Time // fired at or after
	Until        time.Time // fired before
	Offset       int
	Limit        int
}
