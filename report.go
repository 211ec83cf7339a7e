package ferry

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Report formats.
const (
	ReportCSV  = "csv"
	ReportXLSX = "xlsx"
)

// Report periods: the span of time one delivery covers.
const (
	PeriodDay   = "day"
	PeriodWeek  = "week"
	PeriodMonth = "month"
)

// ReportSchedule delivers a report by e-mail on a schedule (run as a
// Temporal Schedule).
type ReportSchedule struct {
	ID   int64  `bun:"id,pk,autoincrement" json:"id"`
	Name string `bun:"name,nullzero" json:"name"`
	// Items are the data items the report contains, e.g. "jobs",
	// "transfer", "alarms"; the report package defines the catalog.
	Items  []string `bun:"items" json:"items"`
	Period string   `bun:"period,nullzero" json:"period"`
	// Cron is a five-field cron expression (or @daily, @weekly, @monthly)
	// in TimeZone.
	Cron        string    `bun:"cron,nullzero" json:"cron"`
	TimeZone    string    `bun:"time_zone" json:"timeZone"`
	Format      string    `bun:"format,nullzero" json:"format"`
	Recipients  []string  `bun:"recipients" json:"recipients"`
	Enabled     bool      `bun:"enabled" json:"enabled"`
	CreatedByID int64     `bun:"created_by_id,nullzero" json:"createdById,omitzero"`
	LastRunAt   time.Time `bun:"last_run_at,nullzero" json:"lastRunAt,omitzero"`
	CreatedAt   time.Time `bun:"created_at" json:"createdAt"`
	UpdatedAt   time.Time `bun:"updated_at" json:"updatedAt"`
}

var reportItemRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate returns EINVALID with one FieldError per invalid field.
func (r *ReportSchedule) Validate() error {
	var fe fieldErrors
	fe.text("name", r.Name, 1, 128)
	if len(r.Items) == 0 {
		fe.add("items", "at least one data item is required")
	}
	for i, it := range r.Items {
		if !reportItemRE.MatchString(it) {
			fe.add(indexed("items", i), "%q is not a data item name", it)
		}
	}
	oneOf(&fe, "period", r.Period, PeriodDay, PeriodWeek, PeriodMonth)
	oneOf(&fe, "format", r.Format, ReportCSV, ReportXLSX)
	if !validCron(r.Cron) {
		fe.add("cron", "must be five cron fields or @daily, @weekly, @monthly")
	}
	if r.TimeZone != "" {
		if _, err := time.LoadLocation(r.TimeZone); err != nil {
			fe.add("timeZone", "unknown time zone %q", r.TimeZone)
		}
	}
	if len(r.Recipients) == 0 {
		fe.add("recipients", "at least one recipient is required")
	}
	for i, to := range r.Recipients {
		if len(to) > 254 || !utf8.ValidString(to) || strings.ContainsRune(to, 0) || !strings.Contains(to, "@") || strings.ContainsAny(to, " \t\r\n<>,;") {
			fe.add(indexed("recipients", i), "%q is not an e-mail address", to)
		}
	}
	return fe.err("report schedule")
}

var cronFieldRE = regexp.MustCompile(`^[0-9A-Za-z*/,\-?]+$`)

func validCron(s string) bool {
	switch s {
	case "@hourly", "@daily", "@weekly", "@monthly", "@yearly":
		return true
	}
	f := strings.Fields(s)
	if len(f) != 5 {
		return false
	}
	for _, x := range f {
		if !cronFieldRE.MatchString(x) {
			return false
		}
	}
	return true
}
