package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/apiserver"
)

func newJobsWatchCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch JOB_ID",
		Short: "Follow a job's live progress until it ends (Ctrl-C to stop watching)",
		Long: `Follow the job's progress stream: a progress bar with the state, rate, ETA,
replication lag and backlog. With --json every status is printed as one JSON
line. The command exits 0 when the job completes its cutover, 1 when it fails or
is cancelled.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			resp, err := c.request(cmd.Context(), "GET", "/api/v1/jobs/"+url.PathEscape(args[0])+"/progress", nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var view statusView
			if cf.json {
				view = jsonStatus{w: cmd.OutOrStdout()}
			} else {
				view = newBarStatus(cmd.ErrOrStderr())
			}
			final, err := readProgress(resp.Body, view.show)
			view.done(final)
			if err != nil {
				if cmd.Context().Err() != nil {
					return nil // interrupted by the user
				}
				return fmt.Errorf("progress stream: %w", err)
			}
			if final == nil {
				return fmt.Errorf("the progress stream ended without a final status")
			}
			if final.State != ferry.JobCutoverComplete {
				return exitError{code: 1, msg: fmt.Sprintf("job %s ended %s %s", final.JobID, final.State, final.Reason)}
			}
			return nil
		},
	}
}

// readProgress parses a server-sent event stream of job statuses, calling
// show for each status, and returns the status of the final "end" event
// (nil if the stream ended without one). Other events (state changes) are
// skipped: the statuses carry the state too.
func readProgress(r io.Reader, show func(*apiserver.JobStatus)) (*apiserver.JobStatus, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var event string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 && (event == apiserver.EventStatus || event == apiserver.EventEnd || event == "") {
				var st apiserver.JobStatus
				if err := json.Unmarshal([]byte(data.String()), &st); err != nil {
					return nil, fmt.Errorf("bad event data: %w", err)
				}
				show(&st)
				if event == apiserver.EventEnd {
					return &st, nil
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return nil, sc.Err()
}

type statusView interface {
	show(*apiserver.JobStatus)
	done(final *apiserver.JobStatus)
}

type jsonStatus struct{ w io.Writer }

func (j jsonStatus) show(st *apiserver.JobStatus) {
	data, _ := json.Marshal(st)
	fmt.Fprintln(j.w, string(data))
}

func (jsonStatus) done(*apiserver.JobStatus) {}

// barStatus draws a progress bar of the current phase with the state,
// rate, ETA, lag and backlog the server reports.
type barStatus struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	max   int64
	state ferry.JobState
}

func newBarStatus(w io.Writer) *barStatus { return &barStatus{w: w} }

func (b *barStatus) show(st *apiserver.JobStatus) {
	p := st.Progress
	max := max(p.BytesTotal, 1)
	if b.bar == nil || max != b.max || st.State != b.state {
		if b.bar != nil {
			_ = b.bar.Finish()
			fmt.Fprintln(b.w)
		}
		b.bar = progressbar.NewOptions64(max, progressbar.OptionSetWriter(b.w), progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false), progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetRenderBlankState(true))
		b.max, b.state = max, st.State
	}
	b.bar.Describe(describeStatus(st))
	_ = b.bar.Set64(min(p.BytesDone, max))
}

func (b *barStatus) done(final *apiserver.JobStatus) {
	if b.bar != nil {
		_ = b.bar.Finish()
		fmt.Fprintln(b.w)
	}
	if final != nil {
		fmt.Fprintf(b.w, "Job %s: %s %s\n", final.JobID, final.State, final.Reason)
	}
}

// describeStatus is the one-line summary next to the bar.
func describeStatus(st *apiserver.JobStatus) string {
	p := st.Progress
	parts := []string{string(st.State)}
	if p.BytesTotal > 0 {
		parts = append(parts, fmt.Sprintf("%s/%s", humanBytes(p.BytesDone), humanBytes(p.BytesTotal)))
	}
	if p.FilesTotal > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d files", p.FilesDone, p.FilesTotal))
	}
	if p.RateBytesPerS > 0 {
		parts = append(parts, humanBytes(int64(p.RateBytesPerS))+"/s")
	}
	if p.ETASeconds > 0 {
		parts = append(parts, "ETA "+(time.Duration(p.ETASeconds)*time.Second).String())
	}
	if st.State.Replicating() && p.Phase == "sync" {
		parts = append(parts, fmt.Sprintf("lag %.1fs", p.LagSeconds))
		if p.BacklogEntries > 0 {
			parts = append(parts, fmt.Sprintf("backlog %d (%s)", p.BacklogEntries, humanBytes(p.BacklogBytes)))
		}
	}
	if st.Waiting != "" {
		parts = append(parts, "waiting for host "+st.Waiting)
	}
	if st.Reason != "" {
		parts = append(parts, st.Reason)
	}
	return strings.Join(parts, "  ")
}
