package apiserver

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-migrate/ferry"
)

// maxScrapedJobs bounds how many active jobs one scrape asks the engine
// about; scrapeTimeout bounds the whole scrape.
const (
	maxScrapedJobs = 200
	scrapeTimeout  = 5 * time.Second
)

// activeStates are the states of jobs whose live status is exported.
var activeStates = []ferry.JobState{ferry.JobPrechecking, ferry.JobMirroring, ferry.JobSyncing, ferry.JobPaused,
	ferry.JobReadyForCutover, ferry.JobTestCutover, ferry.JobCuttingOver}

// jobCollector exports the live status of every active job (the same the
// status endpoint returns) as Prometheus gauges, asked of the engine at
// scrape time: alert on ferry_job_sync_lag_seconds, chart throughput from
// ferry_job_bytes_sent.
type jobCollector struct {
	s                                            *Server
	state, bytesDone, bytesTotal, filesDone      *prometheus.Desc
	filesTotal, rate, lag, backlog, backlogBytes *prometheus.Desc
	applied, sent, up                            *prometheus.Desc
}

func newJobCollector(s *Server) *jobCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ferry_job_"+name, help, append([]string{"job"}, labels...), nil)
	}
	return &jobCollector{s: s,
		state:        d("state", "1 for each active job, labelled with its state and name.", "name", "state"),
		bytesDone:    d("bytes_done", "Bytes the running mirror has copied (before compression)."),
		bytesTotal:   d("bytes_total", "Bytes the running mirror has to copy."),
		filesDone:    d("files_done", "Files the running mirror has copied."),
		filesTotal:   d("files_total", "Files the running mirror has to copy."),
		rate:         d("rate_bytes_per_second", "Current transfer rate of the running mirror or sync."),
		lag:          d("sync_lag_seconds", "Age of the oldest change on the source not yet applied on the target."),
		backlog:      d("sync_backlog_records", "Changes journaled on the source and not yet applied on the target."),
		backlogBytes: d("sync_backlog_bytes", "Bytes the sync backlog is expected to ship."),
		applied:      d("sync_applied", "Changes applied on the target by the running sync session."),
		sent:         d("bytes_sent", "Bytes the running mirror or sync put on the data link (after compression)."),
		up: prometheus.NewDesc("ferry_job_status_up", "1 when the job's live status could be read at this scrape, else 0.",
			[]string{"job"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.bytesDone, c.bytesTotal, c.filesDone, c.filesTotal, c.rate,
		c.lag, c.backlog, c.backlogBytes, c.applied, c.sent, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A job whose status cannot be
// read within the scrape reports ferry_job_status_up 0 and its stored
// state; a failing database reports nothing (the scrape's own health shows
// in ferry_api_* and process metrics).
func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	jobs, _, err := c.s.db.ListJobs(ctx, ferry.JobFilter{States: activeStates, Limit: maxScrapedJobs})
	if err != nil {
		c.s.log.Warn("metrics: list active jobs", "err", err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, j := range jobs {
		st, err := c.s.jobStatus(ctx, j.ID)
		if err != nil {
			gauge(c.up, 0, j.ID)
			gauge(c.state, 1, j.ID, j.Name, string(j.State))
			continue
		}
		gauge(c.up, 1, j.ID)
		gauge(c.state, 1, j.ID, j.Name, string(st.State))
		p := st.Progress
		gauge(c.bytesDone, float64(p.BytesDone), j.ID)
		gauge(c.bytesTotal, float64(p.BytesTotal), j.ID)
		gauge(c.filesDone, float64(p.FilesDone), j.ID)
		gauge(c.filesTotal, float64(p.FilesTotal), j.ID)
		gauge(c.rate, p.RateBytesPerS, j.ID)
		gauge(c.sent, float64(p.BytesSent), j.ID)
		if p.Phase == "sync" {
			gauge(c.lag, p.LagSeconds, j.ID)
			gauge(c.backlog, float64(p.BacklogEntries), j.ID)
			gauge(c.backlogBytes, float64(p.BacklogBytes), j.ID)
			gauge(c.applied, float64(p.AppliedTotal), j.ID)
		}
	}
}
