package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-migrate/ferry/apiserver"
)

func newJobsCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Create, list and operate migration jobs",
	}
	cf.add(cmd)
	cmd.AddCommand(newJobsCreateCmd(&cf), newJobsListCmd(&cf), newJobsGetCmd(&cf), newJobsDeleteCmd(&cf),
		newJobsEventsCmd(&cf), newJobsWatchCmd(&cf))
	for _, action := range apiserver.JobActions() {
		cmd.AddCommand(newJobActionCmd(&cf, action))
	}
	return cmd
}

// jobCreateFlags are every option of a job, as flags.
type jobCreateFlags struct {
	file                                       string
	name, description, mode                    string
	sourceHost, targetHost, targetPath         string
	sourcePaths, excludes, postCutover         []string
	systemProfile, shutdownSource, start       bool
	checksum, onError, orphans, compression    string
	encryption, bandwidth                      string
	lagThreshold, hostOfflineGrace, hookTimout time.Duration
	preCutover, shutdownHook                   string
}

func (f *jobCreateFlags) body(cmd *cobra.Command) (map[string]any, error) {
	b := map[string]any{}
	if f.file != "" {
		data, err := os.ReadFile(f.file)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
	}
	set := func(flag, key string, v any) {
		if cmd.Flags().Changed(flag) || b[key] == nil && !isZero(v) {
			b[key] = v
		}
	}
	set("name", "name", f.name)
	set("description", "description", f.description)
	set("mode", "mode", f.mode)
	set("source-host", "sourceHostId", f.sourceHost)
	set("source-path", "sourcePaths", f.sourcePaths)
	set("target-host", "targetHostId", f.targetHost)
	set("target-path", "targetPath", f.targetPath)
	set("exclude", "excludes", f.excludes)
	set("system-profile", "systemProfile", f.systemProfile)
	set("checksum", "checksumMode", f.checksum)
	set("on-error", "errorPolicy", f.onError)
	set("orphans", "orphanPolicy", f.orphans)
	set("compression", "compression", f.compression)
	set("encryption", "encryption", f.encryption)
	set("bandwidth", "bandwidthSchedule", f.bandwidth)
	if cmd.Flags().Changed("lag-threshold") {
		b["lagThresholdSeconds"] = int(f.lagThreshold / time.Second)
	}
	if cmd.Flags().Changed("host-offline-grace") {
		b["hostOfflineGraceSeconds"] = int(f.hostOfflineGrace / time.Second)
	}
	if f.preCutover != "" || f.shutdownHook != "" || len(f.postCutover) > 0 || f.shutdownSource {
		cut, _ := b["cutover"].(map[string]any)
		if cut == nil {
			cut = map[string]any{}
		}
		timeout := int(f.hookTimout / time.Second)
		if f.preCutover != "" {
			cut["preCutoverHook"] = map[string]any{"command": f.preCutover, "timeoutSeconds": timeout}
		}
		for i, c := range f.postCutover {
			must := strings.HasPrefix(c, "!")
			acts, _ := cut["postCutoverActions"].([]any)
			cut["postCutoverActions"] = append(acts, map[string]any{"name": fmt.Sprintf("action-%d", i+1),
				"command": strings.TrimPrefix(c, "!"), "mustSucceed": must, "timeoutSeconds": timeout})
		}
		if f.shutdownHook != "" {
			cut["shutdownSourceHook"] = map[string]any{"command": f.shutdownHook, "timeoutSeconds": timeout}
		}
		if f.shutdownSource {
			cut["shutdownSource"] = true
		}
		b["cutover"] = cut
	}
	return b, nil
}

func isZero(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ""
	case []string:
		return len(v) == 0
	case bool:
		return !v
	}
	return v == nil
}

func newJobsCreateCmd(cf *clientFlags) *cobra.Command {
	var f jobCreateFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a migration job (it stays pending until started)",
		Example: `  ferry jobs create --name web --source-host SRC --source-path /srv/www \
      --target-host DST --target-path /srv/www --exclude '*.tmp' --compression fast \
      --pre-cutover 'systemctl stop nginx' --post-cutover '!systemctl start nginx' --start
  ferry jobs create --from-file job.json   # the create-job body of the API`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			body, err := f.body(cmd)
			if err != nil {
				return err
			}
			var j apiserver.JobView
			if err := c.call(cmd.Context(), "POST", "/api/v1/jobs", body, &j); err != nil {
				return err
			}
			if f.start {
				if err := c.call(cmd.Context(), "POST", "/api/v1/jobs/"+j.ID+"/actions/start", nil, nil); err != nil {
					return fmt.Errorf("job %s created, but start failed: %w", j.ID, err)
				}
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), j)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created job %s (%s).\n", j.ID, j.Name)
			if j.TemporalURL != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Workflow: %s\n", j.TemporalURL)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.file, "from-file", "", "JSON file with the job (the API's create-job body); flags override its fields")
	fs.StringVar(&f.name, "name", "", "job name")
	fs.StringVar(&f.description, "description", "", "free text")
	fs.StringVar(&f.mode, "mode", "", "file (a file tree, default) or block (a device or image)")
	fs.StringVar(&f.sourceHost, "source-host", "", "source host ID (ferry hosts list)")
	fs.StringArrayVar(&f.sourcePaths, "source-path", nil, "absolute path on the source host (repeatable)")
	fs.StringVar(&f.targetHost, "target-host", "", "target host ID")
	fs.StringVar(&f.targetPath, "target-path", "", "absolute path on the target host")
	fs.StringArrayVar(&f.excludes, "exclude", nil, "glob pattern to leave out (repeatable)")
	fs.BoolVar(&f.systemProfile, "system-profile", false, "exclude what a live system must not copy (/proc, /sys, /dev, /run, …)")
	fs.StringVar(&f.checksum, "checksum", "", "strict (hash blocks) or time (size+mtime, default)")
	fs.StringVar(&f.onError, "on-error", "", "unreadable source file: stop (default) or skip")
	fs.StringVar(&f.orphans, "orphans", "", "target files gone from the source: keep (default), delete or move:/DIR")
	fs.StringVar(&f.compression, "compression", "", "off, fast, balanced (default), normal or extreme")
	fs.StringVar(&f.encryption, "encryption", "", "payload encryption on top of TLS: none (default), aes or sm4")
	fs.StringVar(&f.bandwidth, "bandwidth", "", "bandwidth timetable, e.g. 'Mon-Fri 08:00-18:00 10M'")
	fs.DurationVar(&f.lagThreshold, "lag-threshold", 0, "ready for cutover while lag stays below this (default 10s)")
	fs.DurationVar(&f.hostOfflineGrace, "host-offline-grace", 0, "how long to wait for an offline host before failing (default 30m)")
	fs.StringVar(&f.preCutover, "pre-cutover", "", "shell command run on the source before the final sync")
	fs.StringArrayVar(&f.postCutover, "post-cutover", nil, "shell command run on the target after cutover (repeatable; prefix ! for must-succeed)")
	fs.BoolVar(&f.shutdownSource, "shutdown-source", false, "run --shutdown-source-hook on the source after cutover")
	fs.StringVar(&f.shutdownHook, "shutdown-source-hook", "", "command that shuts the source down")
	fs.DurationVar(&f.hookTimout, "hook-timeout", 0, "timeout of each hook (default 10m)")
	fs.BoolVar(&f.start, "start", false, "start the job right away")
	return cmd
}

func newJobsListCmd(cf *clientFlags) *cobra.Command {
	var states []string
	var host, name string
	var limit, offset int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
			for _, s := range states {
				q.Add("state", s)
			}
			if host != "" {
				q.Set("host", host)
			}
			if name != "" {
				q.Set("name", name)
			}
			var out apiserver.JobListOutput
			if err := c.call(cmd.Context(), "GET", "/api/v1/jobs?"+q.Encode(), nil, &out.Body); err != nil {
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), out.Body)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATE\tSOURCE\tTARGET\tCREATED")
			for _, j := range out.Body.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%s\t%s:%s\t%s\n", j.ID, j.Name, j.State, j.SourceHostID,
					strings.Join(j.SourcePaths, ","), j.TargetHostID, j.TargetPath, j.CreatedAt.Local().Format("2006-01-02 15:04"))
			}
			tw.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "%d of %d jobs\n", len(out.Body.Items), out.Body.Total)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&states, "state", nil, "only jobs in this state (repeatable)")
	cmd.Flags().StringVar(&host, "host", "", "only jobs whose source or target is this host")
	cmd.Flags().StringVar(&name, "name", "", "only jobs whose name or description contains this")
	cmd.Flags().IntVar(&limit, "limit", 50, "page size (at most 1000)")
	cmd.Flags().IntVar(&offset, "offset", 0, "jobs to skip")
	return cmd
}

func newJobsGetCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get JOB_ID",
		Short: "Show a job with all its options",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var j apiserver.JobView
			if err := c.call(cmd.Context(), "GET", "/api/v1/jobs/"+url.PathEscape(args[0]), nil, &j); err != nil {
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), j)
				return nil
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Job %s: %s\nState:    %s %s\nSource:   %s %s\nTarget:   %s %s\n", j.ID, j.Name, j.State, j.StateReason,
				j.SourceHostID, strings.Join(j.SourcePaths, ", "), j.TargetHostID, j.TargetPath)
			fmt.Fprintf(w, "Options:  checksum=%s on-error=%s orphans=%s compression=%s encryption=%s lag-threshold=%ds\n",
				j.ChecksumMode, j.ErrorPolicy, j.OrphanPolicy, j.Compression, j.Encryption, j.LagThresholdSecs)
			if j.TemporalURL != "" {
				fmt.Fprintf(w, "Workflow: %s\n", j.TemporalURL)
			}
			return nil
		},
	}
}

func newJobsDeleteCmd(cf *clientFlags) *cobra.Command {
	var removeData bool
	cmd := &cobra.Command{
		Use:   "delete JOB_ID",
		Short: "Delete a job (the target data is kept unless --remove-target-data)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			path := "/api/v1/jobs/" + url.PathEscape(args[0]) + "?removeTargetData=" + strconv.FormatBool(removeData)
			if err := c.call(cmd.Context(), "DELETE", path, nil, nil); err != nil {
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), map[string]any{"deleted": args[0], "removeTargetData": removeData})
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted job %s.\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&removeData, "remove-target-data", false, "also delete what the job copied to the target")
	return cmd
}

func newJobsEventsCmd(cf *clientFlags) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "events JOB_ID",
		Short: "List a job's events, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out apiserver.JobEventListOutput
			path := "/api/v1/jobs/" + url.PathEscape(args[0]) + "/events?limit=" + strconv.Itoa(limit)
			if err := c.call(cmd.Context(), "GET", path, nil, &out.Body); err != nil {
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), out.Body)
				return nil
			}
			for _, e := range out.Body.Items {
				line := fmt.Sprintf("%s  %-8s %s", e.Time.Local().Format("2006-01-02 15:04:05"), e.Type, e.Message)
				if e.ToState != "" {
					line += fmt.Sprintf(" [%s → %s]", e.FromState, e.ToState)
				}
				if e.Actor != "" {
					line += " by " + e.Actor
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 200, "events to show (at most 1000)")
	return cmd
}

func newJobActionCmd(cf *clientFlags, action string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " JOB_ID",
		Short: actionHelp(action),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out apiserver.ActionOutput
			path := "/api/v1/jobs/" + url.PathEscape(args[0]) + "/actions/" + action
			if err := c.call(cmd.Context(), "POST", path, nil, &out.Body); err != nil {
				var ae *apiserver.APIError
				if errors.As(err, &ae) && ae.Status == 409 {
					return exitError{code: 2, msg: ae.Detail}
				}
				return err
			}
			if cf.json {
				printJSON(cmd.OutOrStdout(), out.Body)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s accepted; state %s.\n", out.Body.JobID, action, out.Body.State)
			return nil
		},
	}
}

func actionHelp(action string) string {
	switch action {
	case apiserver.ActionStart:
		return "Start a job: prechecks, then mirror and sync"
	case apiserver.ActionPause:
		return "Pause replication"
	case apiserver.ActionResume:
		return "Resume a paused job"
	case apiserver.ActionRemirror:
		return "Mirror the whole source again"
	case apiserver.ActionTestCutover:
		return "Bring up a test copy on the target while replication continues"
	case apiserver.ActionEndTest:
		return "End a test cutover and discard its copy"
	case apiserver.ActionCutover:
		return "Cut over to the target"
	case apiserver.ActionRollback:
		return "Roll back a cutover; the job returns to syncing"
	case apiserver.ActionCancel:
		return "Cancel a job"
	}
	return action
}
