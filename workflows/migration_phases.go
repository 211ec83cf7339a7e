package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/activities"
)

// pending waits for "start" (or "cancel").
func (m *migration) pending(ctx workflow.Context) error {
	if m.spec.AutoStart {
		return m.setState(ctx, ferry.JobPrechecking, "system", "started automatically")
	}
	a, ok := m.waitAction(ctx)
	if !ok {
		return ctx.Err()
	}
	return m.take(ctx, a)
}

// paused waits for resume, remirror or cancel.
func (m *migration) paused(ctx workflow.Context) error {
	a, ok := m.waitAction(ctx)
	if !ok {
		return ctx.Err()
	}
	return m.take(ctx, a)
}

// precheck asks both agents about their side, adds the cross-host checks,
// stages the replica directory on the target and moves on to mirroring when
// every check passed.
func (m *migration) precheck(ctx workflow.Context) error {
	var h *activities.Host
	var src, dst activities.PrecheckResult
	act, err := m.race(ctx, func(ctx workflow.Context) error {
		call := func(host, role, path string, out *activities.PrecheckResult) workflow.Future {
			f, set := workflow.NewFuture(ctx)
			workflow.Go(ctx, func(ctx workflow.Context) {
				in := activities.PrecheckInput{JobID: m.spec.JobID, Role: role, Path: path}
				set.Set(nil, m.onHost(ctx, m.longCall(host, time.Hour), h.Precheck, in, out))
			})
			return f
		}
		fs := call(m.spec.SourceHost, activities.RoleSource, m.spec.SourcePath, &src)
		ft := call(m.spec.TargetHost, activities.RoleTarget, m.spec.TargetPath, &dst)
		errS, errT := fs.Get(ctx, nil), ft.Get(ctx, nil)
		if errS != nil {
			return errS
		}
		return errT
	})
	if act != nil {
		return m.take(ctx, *act)
	}
	if err != nil {
		return fmt.Errorf("precheck: %w", err)
	}
	checks := evaluatePrechecks(m.spec, src, dst)
	if allOK(checks) {
		var stage activities.StageResult
		in := activities.StageInput{JobID: m.spec.JobID, TargetPath: m.spec.TargetPath}
		if err := m.onHost(ctx, m.shortCall(m.spec.TargetHost), h.Stage, in, &stage); err != nil {
			return fmt.Errorf("stage replica: %w", err)
		}
		checks = append(checks, stage.Checks...)
	}
	m.st.Prechecks = checks
	var failed []string
	for _, c := range checks {
		res := "passed"
		if !c.OK {
			res = "failed"
			failed = append(failed, c.Name+" ("+c.Detail+")")
		}
		m.eventDetails(ctx, ferry.JobEventPrecheck, fmt.Sprintf("%s: %s: %s", c.Name, res, c.Detail), c)
	}
	if len(failed) > 0 {
		return fmt.Errorf("precheck failed: %s", strings.Join(failed, "; "))
	}
	return m.setState(ctx, ferry.JobMirroring, "system", "prechecks passed")
}

// evaluatePrechecks combines both hosts' reports into the job's checks.
func evaluatePrechecks(spec JobSpec, src, dst activities.PrecheckResult) []activities.Check {
	checks := []activities.Check{{
		Name: activities.CheckAgentOnline, OK: true,
		Detail: fmt.Sprintf("source %s and target %s answered", spec.SourceHost, spec.TargetHost),
	}}
	v := activities.Check{Name: activities.CheckAgentVersion, Detail: fmt.Sprintf("source %q, target %q", src.AgentVersion, dst.AgentVersion)}
	v.OK = compatibleVersions(src.AgentVersion, dst.AgentVersion)
	checks = append(checks, v)
	checks = append(checks, src.Checks...)
	checks = append(checks, dst.Checks...)
	checks = append(checks, activities.Check{
		Name: activities.CheckFreeSpace, OK: dst.FreeBytes >= src.UsedBytes,
		Detail: fmt.Sprintf("target has %d bytes free, source uses %d", dst.FreeBytes, src.UsedBytes),
	})
	for _, r := range []activities.PrecheckResult{src, dst} {
		skew := r.ClockSkew
		if skew < 0 {
			skew = -skew
		}
		checks = append(checks, activities.Check{
			Name: activities.CheckClockSkew, Host: r.HostID, OK: skew <= spec.MaxClockSkew,
			Detail: fmt.Sprintf("%s off by %s (limit %s)", r.HostID, r.ClockSkew.Round(time.Millisecond), spec.MaxClockSkew),
		})
	}
	checks = append(checks, activities.Check{
		Name: activities.CheckOSFamily, OK: src.OS != "" && src.OS == dst.OS,
		Detail: fmt.Sprintf("source %s, target %s", src.OS, dst.OS),
	})
	return checks
}

func allOK(checks []activities.Check) bool {
	for _, c := range checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// compatibleVersions: equal versions, or the same major.minor of vX.Y.Z.
func compatibleVersions(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	mm := func(v string) string {
		parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
		if len(parts) < 2 {
			return v
		}
		return parts[0] + "." + parts[1]
	}
	return mm(a) == mm(b)
}

func (m *migration) replica() string {
	return activities.Layout{JobID: m.spec.JobID, Target: m.spec.TargetPath}.Replica()
}

func (m *migration) syncRequest() activities.SyncRequest {
	return activities.SyncRequest{JobID: m.spec.JobID, SourcePath: m.spec.SourcePath, TargetHost: m.spec.TargetHost,
		TargetAddr: m.spec.TargetAddr, TargetPath: m.replica(), Options: m.spec.Options}
}

// mirror copies the tree; pause and cancel interrupt it, and the next mirror
// resumes from the engine's checkpoint.
func (m *migration) mirror(ctx workflow.Context) error {
	var h *activities.Host
	var res activities.MirrorResult
	in := activities.MirrorInput{Request: activities.MirrorRequest{
		JobID: m.spec.JobID, SourcePath: m.spec.SourcePath, TargetHost: m.spec.TargetHost,
		TargetAddr: m.spec.TargetAddr, TargetPath: m.replica(), Options: m.spec.Options,
	}}
	started := workflow.Now(ctx)
	act, err := m.race(ctx, func(ctx workflow.Context) error {
		return m.onHost(ctx, m.longCall(m.spec.SourceHost, 30*24*time.Hour), h.Mirror, in, &res)
	})
	if act != nil {
		return m.take(ctx, *act)
	}
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	s := res.Summary
	p := &m.st.Progress
	m.st.MirrorBytesSent += s.BytesSent
	p.FilesDone, p.FilesTotal, p.BytesDone, p.BytesTotal = s.Files, s.Files, s.Bytes, s.Bytes
	p.BytesSent = m.st.MirrorBytesSent + m.st.SyncBytesSent
	if d := workflow.Now(ctx).Sub(started).Seconds(); d > 0 {
		p.RateBytes = float64(s.BytesSent) / d
	}
	p.ETA = 0
	m.eventDetails(ctx, ferry.JobEventProgress,
		fmt.Sprintf("mirror complete: %d files, %d bytes, %d bytes sent, %d skipped", s.Files, s.Bytes, s.BytesSent, len(s.Skipped)), res)
	return m.setState(ctx, ferry.JobSyncing, "system", "mirror complete")
}

// replicate runs one sync window in syncing, ready_for_cutover or
// test_cutover and moves between syncing and ready_for_cutover by the lag.
func (m *migration) replicate(ctx workflow.Context) error {
	if m.spec.CompareEvery > 0 && !m.st.CompareScheduled {
		m.ensureCompare(ctx)
	}
	var h *activities.Host
	state := m.st.State
	in := activities.SyncInput{
		Request:           m.syncRequest(),
		LagThreshold:      m.spec.LagThreshold,
		StableFor:         m.spec.ReadyStableFor,
		ReturnWhenReady:   state == ferry.JobSyncing,
		ReturnWhenLagging: state == ferry.JobReadyForCutover,
		Window:            max(m.spec.SyncWindow, 2*m.spec.ReadyStableFor),
	}
	var res activities.SyncResult
	call := m.longCall(m.spec.SourceHost, in.Window+2*m.spec.HeartbeatTimeout+time.Minute)
	act, err := m.race(ctx, func(ctx workflow.Context) error {
		return m.onHost(ctx, call, h.Sync, in, &res)
	})
	if act != nil {
		return m.take(ctx, *act)
	}
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	p := &m.st.Progress
	p.LagMillis, p.BacklogRecords, p.BacklogBytes = res.Stats.LagMillis, res.Stats.BacklogRecords, res.Stats.BacklogBytes
	p.AppliedTotal, p.RateBytes, p.AppliedRate = res.Stats.AppliedTotal, res.Stats.RateBytes, res.Stats.RateRecords
	m.st.SyncBytesSent += res.Stats.BytesSent
	p.BytesSent = m.st.MirrorBytesSent + m.st.SyncBytesSent
	switch {
	case res.RemirrorRequired:
		if err := m.setState(ctx, ferry.JobMirroring, "system", "remirror required: the change journal overflowed"); err != nil {
			return err
		}
	case res.Ready && state == ferry.JobSyncing:
		if err := m.setState(ctx, ferry.JobReadyForCutover, "system",
			fmt.Sprintf("lag %d ms stayed below %s for %s", res.Stats.LagMillis, m.spec.LagThreshold, m.spec.ReadyStableFor)); err != nil {
			return err
		}
	case res.Lagging && state == ferry.JobReadyForCutover:
		if err := m.setState(ctx, ferry.JobSyncing, "system",
			fmt.Sprintf("lag %d ms stayed above %s", res.Stats.LagMillis, m.spec.LagThreshold)); err != nil {
			return err
		}
	}
	if m.st.PendingAction == "" {
		info := workflow.GetInfo(ctx)
		if info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= m.spec.MaxHistoryEvents {
			return errContinueAsNew
		}
	}
	return nil
}

// cutover: pre-cutover hooks on the source, final sync, verify, the swap on
// the target, post-cutover actions, the source shutdown hook. A failure
// before the swap returns the job to syncing; a must-succeed post-cutover
// action that fails rolls the swap back.
func (m *migration) cutover(ctx workflow.Context) error {
	var h *activities.Host
	if m.st.CompareScheduled {
		m.deleteCompare(ctx)
	}
	abort := func(reason string) error {
		m.st.LastError = "cutover aborted: " + reason
		m.event(ctx, ferry.JobEvent{Type: ferry.JobEventError, Message: m.st.LastError})
		return m.setState(ctx, ferry.JobSyncing, "system", m.st.LastError)
	}
	for _, hook := range m.spec.PreCutover {
		if r := m.runHook(ctx, m.spec.SourceHost, activities.HookPreCutover, hook); !r.OK && hook.MustSucceed {
			return abort(fmt.Sprintf("pre-cutover hook %s failed: %s", hook.Name, r.Error))
		}
	}
	var fin activities.FinalSyncResult
	if err := m.onHost(ctx, m.longCall(m.spec.SourceHost, 24*time.Hour), h.FinalSync, activities.FinalSyncInput{Request: m.syncRequest()}, &fin); err != nil {
		return abort("final sync: " + err.Error())
	}
	m.st.Progress.LagMillis, m.st.Progress.BacklogRecords, m.st.Progress.BacklogBytes = fin.Stats.LagMillis, fin.Stats.BacklogRecords, fin.Stats.BacklogBytes
	m.st.SyncBytesSent += fin.Stats.BytesSent
	m.st.Progress.BytesSent = m.st.MirrorBytesSent + m.st.SyncBytesSent
	var ver activities.VerifyResult
	vin := activities.VerifyInput{Request: activities.VerifyRequest(m.syncRequest())}
	if err := m.onHost(ctx, m.longCall(m.spec.SourceHost, 24*time.Hour), h.Verify, vin, &ver); err != nil {
		return abort("verify: " + err.Error())
	}
	m.st.LastVerify = &ver.Report
	m.eventDetails(ctx, ferry.JobEventCompare, fmt.Sprintf("cutover verify: %d differences", ver.Report.Count), ver.Report)
	if !ver.Report.Identical {
		return abort(fmt.Sprintf("verify found %d differences", ver.Report.Count))
	}
	var cut activities.CutoverResult
	cin := activities.CutoverInput{JobID: m.spec.JobID, TargetPath: m.spec.TargetPath}
	if err := m.onHost(ctx, m.shortCall(m.spec.TargetHost), h.Cutover, cin, &cut); err != nil {
		return abort("swap: " + err.Error())
	}
	m.st.PreviousPath = cut.Previous
	for _, hook := range m.spec.PostCutover {
		if r := m.runHook(ctx, m.spec.TargetHost, activities.HookPostCutover, hook); !r.OK && hook.MustSucceed {
			reason := fmt.Sprintf("post-cutover action %s failed: %s", hook.Name, r.Error)
			m.st.LastError = reason
			return m.rollback(ctx, "system", "automatic rollback: "+reason)
		}
	}
	if hook := m.spec.ShutdownSource; hook != nil {
		m.runHook(ctx, m.spec.SourceHost, activities.HookShutdown, *hook)
	}
	return m.setState(ctx, ferry.JobCutoverComplete, "system", "cutover complete")
}

// complete waits in cutover_complete for a rollback until the rollback
// window ends. done is true when the window ended.
func (m *migration) complete(ctx workflow.Context) (done bool, err error) {
	left := m.st.StateSince.Add(m.spec.RollbackWindow).Sub(workflow.Now(ctx))
	if left <= 0 {
		return true, nil
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	var a *action
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(workflow.NewTimer(tctx, left), func(workflow.Future) { done = true })
	sel.AddReceive(m.actions, func(c workflow.ReceiveChannel, _ bool) {
		var got action
		c.Receive(ctx, &got)
		a = &got
	})
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
	if a != nil {
		return false, m.take(ctx, *a)
	}
	if !done {
		return false, ctx.Err()
	}
	return true, nil
}
