package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/replicate"
	"github.com/ferry-migrate/ferry/agent/wire"
)

// syncLine is one --json status object.
type syncLine struct {
	LagMs          int64   `json:"lag_ms"`
	BacklogRecords int64   `json:"backlog_records"`
	BacklogBytes   int64   `json:"backlog_bytes"`
	AppliedTotal   int64   `json:"applied_total"`
	AppliedRate    float64 `json:"applied_rate"`
	State          string  `json:"state"`
	Error          string  `json:"error,omitempty"`
	// Content shipped by the sync before and after compression/sealing.
	ContentBytes     int64 `json:"content_bytes"`
	ContentWireBytes int64 `json:"content_wire_bytes"`
}

func lineOf(st wire.SyncStatus) syncLine {
	return syncLine{LagMs: st.LagMs, BacklogRecords: st.BacklogRecords, BacklogBytes: st.BacklogBytes,
		AppliedTotal: st.AppliedTotal, AppliedRate: float64(st.AppliedRate) / 1000, State: st.State, Error: st.Error,
		ContentBytes: st.ContentBytes, ContentWireBytes: st.ContentWireBytes}
}

func newSyncCmd() *cobra.Command {
	var tf transferFlags
	var checksum, bwlimit, jobID string
	var journalMax int64
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Mirror a tree, then keep the target current until interrupted",
		Long: `Start continuous sync from --from to --to: the source agent starts change
capture, mirrors the tree (files only on the target are deleted), then ships
every change in order until SIGINT or SIGTERM, when it stops cleanly (the
journal is kept; running the same sync again resyncs and continues).

On a terminal the state, lag, backlog and rate are shown on stderr; with
--json one JSON object a second is printed on stdout (lag_ms,
backlog_records, backlog_bytes, applied_total, applied_rate, state,
content_bytes and content_wire_bytes: the file content shipped before and
after compression and encryption). If the
source agent goes away the command reconnects until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctl, from, to, err := tf.controller()
			if err != nil {
				return err
			}
			opts := mirror.Options{Checksum: checksum, Excludes: tf.excludes, Profile: tf.profile, Mounts: tf.mounts,
				BWLimit: bwlimit}
			// The payload stages apply to the mirrors; the change stream
			// itself relies on TLS 1.3 alone for now.
			if err := tf.payload(&opts); err != nil {
				return err
			}
			if err := mirror.Normalize(&opts); err != nil {
				return err
			}
			req := agent.SyncRequest{JobID: jobID, From: from, To: to, Opts: opts, JournalMaxBytes: journalMax << 20}
			return runSync(cmd.Context(), ctl, req, cmd.OutOrStdout(), cmd.ErrOrStderr(), tf.json)
		},
	}
	tf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&checksum, "checksum", wire.ChecksumTime, "mirror and resync mode: strict or time")
	f.StringVar(&bwlimit, "bwlimit", "off", "bandwidth: a rate (4M = 4 MiB/s) or a schedule (see ferry mirror --help)")
	f.StringVar(&jobID, "job", "", "job id (default: derived from --from and --to)")
	f.Int64Var(&journalMax, "journal-max", 1024, "MiB the source agent's journal may use; beyond it the sync resyncs with a mirror (state remirror_required)")
	return cmd
}

// runSync drives the sync until ctx ends, reconnecting to the source agent
// when its connection fails, then stops it and prints the final status.
func runSync(ctx context.Context, ctl *agent.Controller, req agent.SyncRequest, stdout, stderr io.Writer, asJSON bool) error {
	tty := false
	if f, ok := stderr.(*os.File); ok && !asJSON {
		tty = term.IsTerminal(int(f.Fd()))
	}
	show := func(st wire.SyncStatus) {
		l := lineOf(st)
		switch {
		case asJSON:
			json.NewEncoder(stdout).Encode(l)
		case tty:
			fmt.Fprintf(stderr, "\r\033[K%-17s lag %6d ms  backlog %7d records %9s  applied %8d  %8.1f/s %s",
				l.State, l.LagMs, l.BacklogRecords, sizeStr(l.BacklogBytes), l.AppliedTotal, l.AppliedRate, l.Error)
		}
	}
	backoff := 200 * time.Millisecond
	for {
		sess, err := ctl.StartSync(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var re *wire.RemoteError
			if errors.As(err, &re) && !errors.Is(err, wire.ErrBusy) {
				return err
			}
			show(wire.SyncStatus{State: "reconnecting", Error: err.Error()})
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		// On SIGINT/SIGTERM ask for a clean stop; the loop reads on until
		// the final "stopped" status.
		stop := context.AfterFunc(ctx, func() { sess.Cancel() })
		var last wire.SyncStatus
		for {
			st, err := sess.Next()
			if err != nil {
				break
			}
			backoff = 200 * time.Millisecond
			last = st
			show(st)
			if st.State == replicate.StateStopped {
				break
			}
		}
		stop()
		if ctx.Err() != nil {
			if tty {
				fmt.Fprintln(stderr)
			}
			if !asJSON {
				fmt.Fprintf(stdout, "sync stopped: applied %d records, backlog %d records (%s) kept in the journal\n",
					last.AppliedTotal, last.BacklogRecords, sizeStr(last.BacklogBytes))
			}
			sess.Close()
			if last.Error != "" && last.State == replicate.StateStopped {
				return errors.New(last.Error)
			}
			return nil
		}
		sess.Close()
		show(wire.SyncStatus{State: "reconnecting"})
		sleepCtx(ctx, backoff)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func sizeStr(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
