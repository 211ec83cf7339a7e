package workflows

import (
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// SpecFromJob builds the workflow's JobSpec from a stored job. targetAddr
// is the target agent's data-channel address. Returns EINVALID for a job the
// workflow cannot run yet: block-level jobs and jobs with more than one
// source path.
func SpecFromJob(j *ferry.Job, targetAddr string) (JobSpec, error) {
	if j.Mode == ferry.JobModeBlock {
		return JobSpec{}, ferry.Errorf(ferry.EINVALID, "job %s: block-level jobs are not supported by the migration workflow yet", j.ID)
	}
	if len(j.SourcePaths) != 1 {
		return JobSpec{}, ferry.Errorf(ferry.EINVALID, "job %s: exactly one source path is supported, got %d", j.ID, len(j.SourcePaths))
	}
	s := JobSpec{
		JobID:           j.ID,
		SourceHost:      j.SourceHostID,
		TargetHost:      j.TargetHostID,
		SourcePath:      j.SourcePaths[0],
		TargetPath:      j.TargetPath,
		TargetAddr:      targetAddr,
		LagThreshold:    j.LagThreshold,
		HostGracePeriod: j.HostOfflineGrace,
		Options: activities.MirrorOptions{
			Checksum: string(j.ChecksumMode),
			Excludes: j.Excludes,
			OnError:  string(j.ErrorPolicy),
			// The mirror writes into the job's own (empty) replica
			// directory, so the orphan policy applies to the live target
			// only through cutover: keep or delete.
			Orphans: string(ferry.OrphanKeep),
			BWLimit: j.BandwidthSchedule,
			// The cipher's name only: the source agent fetches the key
			// from the control plane at run time (activities.KeySource),
			// so it never lands in the workflow's history.
			Compress: string(j.Compression),
			Encrypt:  string(j.Encryption),
		},
	}
	if j.OrphanPolicy == ferry.OrphanDelete {
		s.Options.Orphans = string(ferry.OrphanDelete)
	}
	if j.SystemProfile {
		s.Options.Profile = "system"
	}
	hooks := cutoverHooks(j)
	s.PreCutover, s.PostCutover, s.ShutdownSource = hooks.PreCutover, hooks.PostCutover, hooks.ShutdownSource
	return s, nil
}

// cutoverHooks are the workflow's hooks for a job's cutover options.
func cutoverHooks(j *ferry.Job) CutoverHooks {
	var h CutoverHooks
	timeout := func(d time.Duration) time.Duration {
		if d <= 0 {
			return ferry.DefaultHookTimeout
		}
		return d
	}
	shell := func(name string, hk ferry.Hook, must bool) activities.Hook {
		return activities.Hook{Name: name, Command: []string{"/bin/sh", "-c", hk.Command}, Timeout: timeout(hk.Timeout), MustSucceed: must}
	}
	c := j.Cutover
	if c.PreCutoverHook.Command != "" {
		h.PreCutover = []activities.Hook{shell("pre-cutover", c.PreCutoverHook, true)}
	}
	for _, a := range c.PostCutoverActions {
		h.PostCutover = append(h.PostCutover, activities.Hook{Name: a.Name, Command: []string{"/bin/sh", "-c", a.Command},
			Timeout: timeout(a.Timeout), MustSucceed: a.MustSucceed})
	}
	if c.ShutdownSource && c.ShutdownSourceHook.Command != "" {
		sh := shell("shutdown-source", c.ShutdownSourceHook, false)
		h.ShutdownSource = &sh
	}
	return h
}
