package ferry

import "time"

// Subjects of metric samples and alarms: "job:ID", "host:ID".
func JobSubject(id string) string  { return "job:" + id }
func HostSubject(id string) string { return "host:" + id }

// Well-known metric names. Other packages may add their own.
const (
	MetricBytesPerSecond  = "bytes_per_second"
	MetricBytesDone       = "bytes_done"
	MetricFilesDone       = "files_done"
	MetricLagSeconds      = "lag_seconds"
	MetricBacklogBytes    = "backlog_bytes"
	MetricCPUPercent      = "cpu_percent"
	MetricMemoryUsedBytes = "memory_used_bytes"
	MetricDiskUsedPercent = "disk_used_percent"
)

// MetricSample is one point of a monitoring time series (job throughput,
// lag, host CPU, …), kept for charts and reports.
type MetricSample struct {
	ID      int64     `bun:"id,pk,autoincrement" json:"-"`
	Time    time.Time `bun:"time" json:"time"`
	Subject string    `bun:"subject,nullzero" json:"subject"`
	Name    string    `bun:"name,nullzero" json:"name"`
	Value   float64   `bun:"value" json:"value"`
}

// Validate returns EINVALID with one FieldError per invalid field.
func (m *MetricSample) Validate() error {
	var fe fieldErrors
	fe.text("subject", m.Subject, 1, 256)
	if msg := validName(m.Name); msg != "" {
		fe.add("name", "%s", msg)
	}
	fe.time("time", m.Time)
	return fe.err("metric sample")
}

// MetricFilter selects samples in ListMetrics; samples come oldest first.
type MetricFilter struct {
	Subject string   // required
	Names   []string // empty: all
	Since   time.Time
	Until   time.Time
	Limit   int
}
