package wire

// SetLimits asks an agent to replace the bandwidth schedule of a job it is
// sending right now (issue 4: a new schedule applies to a running transfer
// within a second). It starts its own conversation on a fresh controller
// connection; the agent answers LimitsSet, or an Error wrapping
// ErrUnknownJob (no such job sending here) or ErrProtocol (a bad schedule).
type SetLimits struct {
	JobID string
	// Schedule uses bwlimit syntax; "" or "off" removes the limit.
	Schedule string
}

func (*SetLimits) Kind() Kind { return KindSetLimits }

func (m *SetLimits) Encode(e *Encoder) {
	e.String(m.JobID)
	e.String(m.Schedule)
}

func (m *SetLimits) Decode(d *Decoder) error {
	m.JobID = d.String()
	m.Schedule = d.String()
	return d.Err()
}

// LimitsSet acknowledges SetLimits: the job's limiter follows the new
// schedule from now on. Schedule echoes it in canonical form.
type LimitsSet struct {
	Schedule string
}

func (*LimitsSet) Kind() Kind { return KindLimitsSet }

func (m *LimitsSet) Encode(e *Encoder) { e.String(m.Schedule) }

func (m *LimitsSet) Decode(d *Decoder) error {
	m.Schedule = d.String()
	return d.Err()
}
