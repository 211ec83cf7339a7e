package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/agent/fsys"
	"github.com/ferry-migrate/ferry/agent/mirror"
)

// runLsyncd runs the scenario with lsyncd (default.rsync, delay 0, archive
// with hardlinks, ACLs, xattrs and numeric ids) syncing src to dst.
func runLsyncd(sc scenario, dir, src, dst string, d, window time.Duration) (result, error) {
	conf := filepath.Join(dir, "lsyncd.conf")
	cfg := fmt.Sprintf(`settings { nodaemon = true, insist = true, maxProcesses = 4 }
sync {
  default.rsync,
  source = %q,
  target = %q,
  delay = 0,
  rsync = { archive = true, hard_links = true, acls = true, xattrs = true, _extra = { "--numeric-ids" } },
}
`, src+"/", dst+"/")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return result{}, err
	}
	cmd := exec.Command("lsyncd", conf)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("lsyncd: %w", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	// Wait for lsyncd's initial full rsync.
	deadline := time.Now().Add(60 * time.Second)
	for {
		// lsyncd's rsync leaves directory mtimes behind: wait for
		// everything else.
		if ds, err := differenceList(src, dst); err == nil && len(ds) == dirMtimeOnly(ds) {
			break
		}
		if time.Now().After(deadline) {
			ds, _ := differenceList(src, dst)
			return result{}, fmt.Errorf("lsyncd: initial sync not done in 60 s: %d differences, first %+v", len(ds), ds[:min(3, len(ds))])
		}
		time.Sleep(200 * time.Millisecond)
	}
	r, err := measure(sc, src, dst, d, window)
	if err == nil && r.convergedIn < 0 {
		if ds, err := differenceList(src, dst); err == nil {
			r.note = fmt.Sprintf(" (%d of them only a directory mtime)", dirMtimeOnly(ds))
		}
	}
	return r, err
}

// dirMtimeOnly counts differences that are only an mtime (directories,
// which lsyncd's rsync does not keep).
func dirMtimeOnly(ds []mirror.Difference) int {
	n := 0
	for _, d := range ds {
		if len(d.Kinds) == 1 && d.Kinds[0] == fsys.DiffMtime {
			n++
		}
	}
	return n
}
