package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sys/unix"

	"github.com/ferry-migrate/ferry/agent/fsys"
)

// CutoverInput names the job whose replica goes live on this target host.
type CutoverInput struct {
	JobID      string
	TargetPath string
}

// CutoverResult says how the swap was done.
type CutoverResult struct {
	// Exchanged is true when the target existed and was swapped atomically
	// with renameat2(RENAME_EXCHANGE); its previous contents are in Previous.
	Exchanged bool
	// Previous is where the target's former contents are kept ("" when the
	// target did not exist before).
	Previous string
}

// cutoverState is the record that makes Cutover and Rollback idempotent: a
// retried attempt recognises a swap already done by the inode numbers.
type cutoverState struct {
	ReplicaIno  uint64 `json:"replicaIno"`  // the replica tree's root directory
	PreviousIno uint64 `json:"previousIno"` // the target's former root, 0 if none
}

// Cutover runs on the target host: it swaps the replica into place at the
// target path with renameat2(RENAME_EXCHANGE) (one atomic step; a reader sees
// either the old or the new tree) and keeps the former contents under
// Layout.Previous for rollback. A retry after a crash at any point completes
// the same swap, never undoes it. Returns a non-retryable CutoverFailed error
// when there is no replica to swap in.
func (h *Host) Cutover(ctx context.Context, in CutoverInput) (CutoverResult, error) {
	l := Layout{JobID: in.JobID, Target: in.TargetPath}
	target := filepath.Clean(in.TargetPath)
	st, haveState, err := readCutoverState(l)
	if err != nil {
		return CutoverResult{}, err
	}
	tIno, tExists, err := inode(target)
	if err != nil {
		return CutoverResult{}, err
	}
	rIno, rExists, err := inode(l.Replica())
	if err != nil {
		return CutoverResult{}, err
	}
	if haveState && tExists && tIno == st.ReplicaIno {
		// Swapped already: finish moving the former contents aside.
		if rExists {
			if err := renameNoReplace(l.Replica(), l.Previous()); err != nil {
				return CutoverResult{}, fmt.Errorf("cutover: keep previous: %w", err)
			}
		}
		return CutoverResult{Exchanged: st.PreviousIno != 0, Previous: previousIf(l, st)}, nil
	}
	if !rExists {
		return CutoverResult{}, temporal.NewNonRetryableApplicationError("cutover: no replica at "+l.Replica(), ErrTypeCutover, nil)
	}
	if _, pExists, _ := inode(l.Previous()); pExists {
		return CutoverResult{}, temporal.NewNonRetryableApplicationError("cutover: "+l.Previous()+" already exists (an earlier cutover was not rolled back)", ErrTypeCutover, nil)
	}
	st = cutoverState{ReplicaIno: rIno}
	if tExists {
		st.PreviousIno = tIno
	}
	if err := writeCutoverState(l, st); err != nil {
		return CutoverResult{}, err
	}
	if !tExists {
		if err := renameNoReplace(l.Replica(), target); err != nil {
			return CutoverResult{}, fmt.Errorf("cutover: %w", err)
		}
		activity.GetLogger(ctx).Info("cutover: replica moved into place", "target", target)
		return CutoverResult{}, nil
	}
	if err := exchange(l.Replica(), target); err != nil {
		return CutoverResult{}, fmt.Errorf("cutover: %w", err)
	}
	// The replica name now holds the former contents.
	if err := renameNoReplace(l.Replica(), l.Previous()); err != nil {
		return CutoverResult{}, fmt.Errorf("cutover: keep previous: %w", err)
	}
	activity.GetLogger(ctx).Info("cutover: replica exchanged into place", "target", target, "previous", l.Previous())
	return CutoverResult{Exchanged: true, Previous: l.Previous()}, nil
}

func previousIf(l Layout, st cutoverState) string {
	if st.PreviousIno == 0 {
		return ""
	}
	return l.Previous()
}

// RollbackInput names the job whose cutover is undone on this target host.
type RollbackInput struct {
	JobID      string
	TargetPath string
}

// RollbackResult says what was restored.
type RollbackResult struct {
	// Restored is true when former contents were swapped back; false when
	// the target did not exist before cutover (it is removed again).
	Restored bool
}

// Rollback runs on the target host: it undoes Cutover. The former contents go
// back to the target path (RENAME_EXCHANGE again) and the migrated tree goes
// back to the replica directory, so that sync continues into it. Idempotent
// like Cutover. Returns a non-retryable CutoverFailed error when there is no
// cutover record.
func (h *Host) Rollback(ctx context.Context, in RollbackInput) (RollbackResult, error) {
	l := Layout{JobID: in.JobID, Target: in.TargetPath}
	target := filepath.Clean(in.TargetPath)
	st, haveState, err := readCutoverState(l)
	if err != nil {
		return RollbackResult{}, err
	}
	if !haveState {
		return RollbackResult{}, temporal.NewNonRetryableApplicationError("rollback: no cutover recorded in "+l.Staging(), ErrTypeCutover, nil)
	}
	tIno, tExists, err := inode(target)
	if err != nil {
		return RollbackResult{}, err
	}
	_, rExists, err := inode(l.Replica())
	if err != nil {
		return RollbackResult{}, err
	}
	_, pExists, err := inode(l.Previous())
	if err != nil {
		return RollbackResult{}, err
	}
	if st.PreviousIno == 0 {
		// There was nothing before: the migrated tree goes back to replica.
		if tExists && tIno == st.ReplicaIno && !rExists {
			if err := renameNoReplace(target, l.Replica()); err != nil {
				return RollbackResult{}, fmt.Errorf("rollback: %w", err)
			}
		}
		return RollbackResult{}, os.Remove(l.stateFile())
	}
	switch {
	case tExists && tIno == st.PreviousIno:
		// Swapped back already; the migrated tree may still be under previous.
		if pExists && !rExists {
			if err := renameNoReplace(l.Previous(), l.Replica()); err != nil {
				return RollbackResult{}, fmt.Errorf("rollback: %w", err)
			}
		}
	case pExists:
		if err := exchange(l.Previous(), target); err != nil {
			return RollbackResult{}, fmt.Errorf("rollback: %w", err)
		}
		if err := renameNoReplace(l.Previous(), l.Replica()); err != nil {
			return RollbackResult{}, fmt.Errorf("rollback: %w", err)
		}
	default:
		return RollbackResult{}, temporal.NewNonRetryableApplicationError("rollback: the previous contents are gone from "+l.Previous(), ErrTypeCutover, nil)
	}
	activity.GetLogger(ctx).Info("rollback: previous contents restored", "target", target)
	if err := os.Remove(l.stateFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return RollbackResult{}, err
	}
	return RollbackResult{Restored: true}, nil
}

// TestCutoverInput names the job whose replica is copied for a test.
type TestCutoverInput struct {
	JobID      string
	TargetPath string
}

// TestCutoverResult names the usable copy.
type TestCutoverResult struct {
	Path string
}

// TestCutover runs on the target host: it makes a usable copy of the current
// replica in its own directory (Layout.Test) while replication continues into
// the replica. The copy keeps every attribute (cp -a, reflinks where the
// filesystem has them). A leftover copy from an earlier test is replaced.
func (h *Host) TestCutover(ctx context.Context, in TestCutoverInput) (TestCutoverResult, error) {
	l := Layout{JobID: in.JobID, Target: in.TargetPath}
	if err := os.RemoveAll(l.Test()); err != nil {
		return TestCutoverResult{}, fmt.Errorf("test cutover: %w", err)
	}
	if _, err := os.Stat(l.Replica()); err != nil {
		return TestCutoverResult{}, temporal.NewNonRetryableApplicationError("test cutover: no replica: "+err.Error(), ErrTypeCutover, err)
	}
	hb := startHeartbeat(ctx, h.heartbeatEvery(), nil)
	defer hb.stop()
	cmd := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", "--", l.Replica(), l.Test())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(l.Test())
		return TestCutoverResult{}, fmt.Errorf("test cutover: cp: %v: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	return TestCutoverResult{Path: l.Test()}, nil
}

// EndTestInput names the job whose test copy is discarded.
type EndTestInput struct {
	JobID      string
	TargetPath string
}

// EndTestResult is empty; it exists so the activity can grow.
type EndTestResult struct{}

// EndTest runs on the target host: it discards the test-cutover copy.
func (h *Host) EndTest(ctx context.Context, in EndTestInput) (EndTestResult, error) {
	l := Layout{JobID: in.JobID, Target: in.TargetPath}
	if err := os.RemoveAll(l.Test()); err != nil {
		return EndTestResult{}, fmt.Errorf("end test: %w", err)
	}
	return EndTestResult{}, nil
}

func inode(path string) (ino uint64, exists bool, err error) {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return st.Sys().(*syscall.Stat_t).Ino, true, nil
}

func exchange(a, b string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		return &os.LinkError{Op: "renameat2 exchange", Old: a, New: b, Err: err}
	}
	return nil
}

func renameNoReplace(from, to string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE); err != nil {
		return &os.LinkError{Op: "renameat2 noreplace", Old: from, New: to, Err: err}
	}
	return nil
}

func readCutoverState(l Layout) (cutoverState, bool, error) {
	var st cutoverState
	b, err := os.ReadFile(l.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("cutover state %s: %w", l.stateFile(), err)
	}
	return st, true, nil
}

// writeCutoverState writes the record durably (temp file, fsync, rename,
// fsync of the directory) before any swap.
func writeCutoverState(l Layout, st cutoverState) error {
	b, _ := json.Marshal(st)
	return fsys.WriteFileDurable(l.stateFile(), b, 0o600)
}

// DiscardJobInput names the job whose staging directory is removed.
type DiscardJobInput struct {
	JobID      string
	TargetPath string
}

// DiscardJobResult says what was removed ("" when nothing was there).
type DiscardJobResult struct {
	Removed string
}

// DiscardJob runs on the target host when a job is removed with its data:
// it deletes the job's staging directory (replica, previous contents, test
// copy, cutover record). The live target path is never touched.
func (h *Host) DiscardJob(ctx context.Context, in DiscardJobInput) (DiscardJobResult, error) {
	if in.JobID == "" || !filepath.IsAbs(in.TargetPath) {
		return DiscardJobResult{}, invalid("discard job: job ID and an absolute target path are required")
	}
	l := Layout{JobID: in.JobID, Target: in.TargetPath}
	if _, err := os.Lstat(l.Staging()); errors.Is(err, os.ErrNotExist) {
		return DiscardJobResult{}, nil
	}
	hb := startHeartbeat(ctx, h.heartbeatEvery(), nil)
	defer hb.stop()
	if err := os.RemoveAll(l.Staging()); err != nil {
		return DiscardJobResult{}, fmt.Errorf("discard job: %w", err)
	}
	return DiscardJobResult{Removed: l.Staging()}, nil
}
