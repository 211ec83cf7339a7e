package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-migrate/ferry/agent"
	"github.com/ferry-migrate/ferry/agent/mirror"
	"github.com/ferry-migrate/ferry/agent/pki"
	"github.com/ferry-migrate/ferry/agent/seal"
	"github.com/ferry-migrate/ferry/agent/wire"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// transferFlags are the flags mirror and verify share.
type transferFlags struct {
	caDir, from, to string
	excludes        []string
	profile         string
	mounts          []string
	json            bool
	// Payload options: mirror applies them to Data frames; verify sends
	// them too, so that both commands accept and refuse the same flags.
	compress, encrypt, keyFile string
}

func (t *transferFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.caDir, "ca", "", "certificate authority directory (ferry ca init)")
	f.StringVar(&t.from, "from", "", "source: AGENT_HOST:PORT:/PATH")
	f.StringVar(&t.to, "to", "", "target: AGENT_HOST:PORT:/PATH")
	f.StringArrayVar(&t.excludes, "exclude", nil, "glob of paths to leave out (repeatable; a leading / anchors at the root)")
	f.StringVar(&t.profile, "profile", "", "built-in profile: system (leaves out /proc, /sys, /dev, /run, /tmp, other mounts, swap files)")
	f.StringArrayVar(&t.mounts, "mount", nil, "with --profile system: a mount point to include (repeatable)")
	f.BoolVar(&t.json, "json", false, "print a machine-readable JSON result on stdout")
	f.StringVar(&t.compress, "compress", "off", "payload compression: off, fast, balanced, normal, extreme (zstd; incompressible frames go raw)")
	f.StringVar(&t.encrypt, "encrypt", "none", "payload encryption on top of TLS: none, aes (AES-256-GCM), sm4 (SM4-GCM)")
	f.StringVar(&t.keyFile, "key-file", "", "with --encrypt: file holding the job's secret (at least 16 bytes)")
}

// payload sets the payload options of opts from the flags, reading the key
// file when --encrypt is set. Errors: --encrypt without --key-file, or an
// unreadable or short key file (the error never contains the key).
func (t *transferFlags) payload(opts *mirror.Options) error {
	opts.Compress, opts.Encrypt = t.compress, t.encrypt
	if t.encrypt == "" || t.encrypt == "none" {
		return nil
	}
	if t.keyFile == "" {
		return errors.New("--encrypt needs --key-file")
	}
	key, err := seal.ReadKeyFile(t.keyFile)
	if err != nil {
		return err
	}
	opts.Key = key
	return nil
}

// controller loads the CLI's identity and parses the endpoints.
func (t *transferFlags) controller() (*agent.Controller, agent.Endpoint, agent.Endpoint, error) {
	var zero agent.Endpoint
	if t.caDir == "" {
		return nil, zero, zero, errors.New("--ca is required")
	}
	from, err := agent.ParseEndpoint(t.from)
	if err != nil {
		return nil, zero, zero, fmt.Errorf("--from: %w", err)
	}
	to, err := agent.ParseEndpoint(t.to)
	if err != nil {
		return nil, zero, zero, fmt.Errorf("--to: %w", err)
	}
	host, _ := os.Hostname()
	id, err := pki.LoadOrIssue(t.caDir, filepath.Join(t.caDir, "cli"), "ferry-cli "+host, nil)
	if err != nil {
		return nil, zero, zero, err
	}
	return &agent.Controller{TLS: id.ClientTLS()}, from, to, nil
}

func newMirrorCmd() *cobra.Command {
	var tf transferFlags
	var checksum, onError, orphans, jobID string
	var bwlimit string
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Mirror a file tree from one agent's host to another's",
		Long: `Mirror the tree at --from to --to. The CLI connects to both agents; the source
agent streams to the target agent directly. Re-running the same mirror (same
--from and --to, or the same --job) resumes it: completed files are not sent
again and partial large files continue from their last checkpoint.

Exit status: 0 when everything was mirrored, 2 when some objects were skipped
(--on-error skip; they are listed), 1 on failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctl, from, to, err := tf.controller()
			if err != nil {
				return err
			}
			opts := mirror.Options{Checksum: checksum, Excludes: tf.excludes, OnError: onError,
				Profile: tf.profile, Mounts: tf.mounts, BWLimit: bwlimit}
			if err := tf.payload(&opts); err != nil {
				return err
			}
			if opts.Orphans, opts.OrphanDir, err = mirror.ParseOrphans(orphans); err != nil {
				return err
			}
			if err := mirror.Normalize(&opts); err != nil {
				return err
			}
			req := agent.MirrorRequest{JobID: jobID, From: from, To: to, Opts: opts}
			bar := newProgress(cmd.ErrOrStderr(), tf.json)
			start := time.Now()
			sum, err := ctl.Mirror(cmd.Context(), req, bar.update)
			bar.finish()
			if err != nil {
				if tf.json {
					printJSON(cmd.OutOrStdout(), map[string]any{"ok": false, "error": err.Error(),
						"duration_ms": time.Since(start).Milliseconds()})
				}
				return err
			}
			if sum.Skipped == nil {
				sum.Skipped = []mirror.Skip{}
			}
			if tf.json {
				printJSON(cmd.OutOrStdout(), struct {
					OK bool `json:"ok"`
					mirror.Summary
				}{len(sum.Skipped) == 0, sum})
			} else {
				printMirrorSummary(cmd.OutOrStdout(), sum)
			}
			if len(sum.Skipped) > 0 {
				return exitError{code: 2, msg: fmt.Sprintf("%d objects skipped", len(sum.Skipped))}
			}
			return nil
		},
	}
	tf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&checksum, "checksum", wire.ChecksumTime, "strict (compare block hashes of every file) or time (size+mtime, strict when they differ)")
	f.StringVar(&onError, "on-error", wire.OnErrorStop, "unreadable source file: stop, or skip (listed in the summary)")
	f.StringVar(&orphans, "orphans", wire.OrphansKeep, "files only on the target: keep, delete, or move:DIR (DIR relative to the target root)")
	f.StringVar(&bwlimit, "bwlimit", "off", "bandwidth: a rate (4M = 4 MiB/s) or a schedule 'Mon-Fri 08:00-18:00 10M; * 00:00-24:00 off' (0 = forbidden window)")
	f.StringVar(&jobID, "job", "", "job id (default: derived from --from and --to, so a re-run resumes)")
	return cmd
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func printMirrorSummary(w io.Writer, s mirror.Summary) {
	fmt.Fprintf(w, "mirrored %d files (%s), %d dirs, %d symlinks, %d special, %d hardlinks in %.1fs\n",
		s.Files, humanBytes(s.Bytes), s.Dirs, s.Symlinks, s.Specials, s.Hardlinks, float64(s.DurationMs)/1000)
	if s.PayloadCompressed != s.PayloadBytes {
		fmt.Fprintf(w, "compression: %s -> %s\n", humanBytes(s.PayloadBytes), humanBytes(s.PayloadCompressed))
	}
	fmt.Fprintf(w, "sent %d files (%s content, %s on the wire), %d up to date, %d delta, %d resumed (%s not re-sent)\n",
		s.FilesSent, humanBytes(s.BytesSent), humanBytes(s.BytesOnWire), s.FilesUpToDate, s.DeltaFiles,
		s.ResumedFiles, humanBytes(s.ResumedBytes))
	if t := s.Target; t.OrphansFound > 0 {
		fmt.Fprintf(w, "orphans: %d found, %d deleted, %d moved\n", t.OrphansFound, t.OrphansRemoved, t.OrphansMoved)
	}
	for _, sk := range s.Skipped {
		fmt.Fprintf(w, "skipped: %q: %s\n", sk.Path, sk.Reason)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// progress draws a progress bar on a terminal (nothing otherwise).
type progress struct {
	bar  *progressbar.ProgressBar
	last mirror.Progress
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{}
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return p
	}
	p.bar = progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetDescription("scanning"),
	)
	return p
}

func (p *progress) update(pr mirror.Progress) {
	p.last = pr
	if p.bar == nil {
		return
	}
	if pr.ScanDone && p.bar.GetMax64() != pr.BytesTotal {
		p.bar.ChangeMax64(pr.BytesTotal)
	}
	p.bar.Describe(fmt.Sprintf("files %d/%d%s", pr.FilesDone, pr.FilesTotal, map[bool]string{false: "+", true: ""}[pr.ScanDone]))
	p.bar.Set64(pr.BytesDone)
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
}
