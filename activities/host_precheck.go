package activities

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"golang.org/x/sys/unix"
)

// Precheck roles.
const (
	RoleSource = "source"
	RoleTarget = "target"
)

// Names of the prechecks, as users see them.
const (
	CheckAgentOnline   = "agent online"
	CheckAgentVersion  = "agent version compatible"
	CheckSourcePath    = "source path valid"
	CheckTargetPath    = "target path valid"
	CheckFreeSpace     = "target free space"
	CheckClockSkew     = "clock skew"
	CheckOSFamily      = "same OS family"
	CheckSameFS        = "staging on target filesystem"
	CheckReplicaStaged = "replica staged"
)

// Check is one named precheck and its result.
type Check struct {
	Name   string `json:"name"`
	Host   string `json:"host,omitempty"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// PrecheckInput asks a host about its side of a job.
type PrecheckInput struct {
	JobID string
	Role  string // RoleSource or RoleTarget
	// Path is the source tree (source role) or the live target path
	// (target role).
	Path string
}

// PrecheckResult is what a host reports about itself and its side of a job.
// Checks holds the host-local checks; the workflow adds the cross-host ones.
type PrecheckResult struct {
	HostID       string
	AgentVersion string
	OS           string // GOOS
	Arch         string
	// ClockSkew is the host's clock minus the Temporal server's time at the
	// activity's start (includes the poll latency, milliseconds).
	ClockSkew time.Duration
	UsedBytes int64 // source: bytes the tree occupies
	FreeBytes int64 // target: bytes available to the target path's filesystem
	Checks    []Check
}

// Precheck runs on each host of a job before anything is copied. A failed
// check is a result, not an error; errors are infrastructure failures.
func (h *Host) Precheck(ctx context.Context, in PrecheckInput) (PrecheckResult, error) {
	info := activity.GetInfo(ctx)
	res := PrecheckResult{
		HostID:       h.ID,
		AgentVersion: h.AgentVersion,
		OS:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		ClockSkew:    h.now().Sub(info.StartedTime),
	}
	switch in.Role {
	case RoleSource:
		hb := startHeartbeat(ctx, h.heartbeatEvery(), nil)
		defer hb.stop()
		c := Check{Name: CheckSourcePath, Host: h.ID}
		used, err := treeUsage(ctx, in.Path)
		if err != nil {
			c.Detail = err.Error()
		} else {
			c.OK, c.Detail, res.UsedBytes = true, fmt.Sprintf("%s uses %d bytes", in.Path, used), used
		}
		res.Checks = append(res.Checks, c)
	case RoleTarget:
		res.Checks = append(res.Checks, checkTarget(h.ID, in.Path))
		if free, err := freeBytes(filepath.Dir(filepath.Clean(in.Path))); err == nil {
			res.FreeBytes = free
		}
	default:
		return res, invalid("precheck: unknown role %q", in.Role)
	}
	return res, nil
}

// checkTarget checks that path is absolute, its parent a directory, and that
// path itself is absent or a directory (not a symlink).
func checkTarget(host, path string) Check {
	c := Check{Name: CheckTargetPath, Host: host}
	if !filepath.IsAbs(path) || filepath.Clean(path) == "/" {
		c.Detail = fmt.Sprintf("%q must be an absolute path other than /", path)
		return c
	}
	parent := filepath.Dir(filepath.Clean(path))
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		c.Detail = fmt.Sprintf("parent directory %s does not exist", parent)
		return c
	}
	st, err := os.Lstat(path)
	switch {
	case err == nil && !st.IsDir():
		c.Detail = fmt.Sprintf("%s exists and is not a directory", path)
	case err == nil:
		c.OK, c.Detail = true, fmt.Sprintf("%s exists; its contents are kept for rollback", path)
	case os.IsNotExist(err):
		c.OK, c.Detail = true, fmt.Sprintf("%s will be created at cutover", path)
	default:
		c.Detail = err.Error()
	}
	return c
}

// treeUsage returns the bytes allocated to the tree at root, staying on
// root's filesystem. For "/" it is the filesystem's used space.
func treeUsage(ctx context.Context, root string) (int64, error) {
	if !filepath.IsAbs(root) {
		return 0, fmt.Errorf("%q is not an absolute path", root)
	}
	st, err := os.Lstat(root)
	if err != nil {
		return 0, err
	}
	if !st.IsDir() {
		return 0, fmt.Errorf("%s is not a directory", root)
	}
	if filepath.Clean(root) == "/" {
		var s unix.Statfs_t
		if err := unix.Statfs(root, &s); err != nil {
			return 0, &os.PathError{Op: "statfs", Path: root, Err: err}
		}
		return int64(s.Blocks-s.Bfree) * s.Bsize, nil
	}
	dev := st.Sys().(*syscall.Stat_t).Dev
	var total int64
	n := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if d.IsDir() && sys.Dev != dev {
			return filepath.SkipDir
		}
		total += sys.Blocks * 512
		return nil
	})
	return total, err
}

func freeBytes(dir string) (int64, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return int64(s.Bavail) * s.Bsize, nil
}

// StageInput prepares a job's directories on the target host.
type StageInput struct {
	JobID      string
	TargetPath string
}

// StageResult names the replica directory mirror and sync write into.
type StageResult struct {
	Replica string
	Checks  []Check
}

// Stage runs on the target host: it creates the job's staging and replica
// directories beside the target path and checks they are on the target
// path's filesystem, so that cutover is a rename. Returns a non-retryable
// InvalidRequest error when the target path's parent does not exist.
func (h *Host) Stage(ctx context.Context, in StageInput) (StageResult, error) {
	l := Layout{JobID: in.JobID, Target: in.TargetPath}
	parent := filepath.Dir(filepath.Clean(in.TargetPath))
	pst, err := os.Stat(parent)
	if err != nil {
		return StageResult{}, invalid("stage: target parent %s: %v", parent, err)
	}
	if err := os.MkdirAll(l.Replica(), 0o700); err != nil {
		return StageResult{}, fmt.Errorf("stage: %w", err)
	}
	rst, err := os.Stat(l.Replica())
	if err != nil {
		return StageResult{}, fmt.Errorf("stage: %w", err)
	}
	same := Check{Name: CheckSameFS, Host: h.ID, OK: pst.Sys().(*syscall.Stat_t).Dev == rst.Sys().(*syscall.Stat_t).Dev}
	if same.OK {
		same.Detail = l.Staging() + " is on the filesystem of " + parent
	} else {
		same.Detail = l.Staging() + " is on another filesystem than " + parent + ": cutover cannot be atomic"
	}
	return StageResult{Replica: l.Replica(), Checks: []Check{same}}, nil
}
