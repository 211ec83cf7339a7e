package journal

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// syncLoop is the group commit. After an append it (optionally) waits
// SyncInterval to gather more, then flushes rotated segments, the active
// segment and, when segments were created, the directory, and publishes the
// new durable point. Appends that arrive during a flush are covered by the
// next one.
func (j *Journal) syncLoop() {
	defer close(j.stopped)
	for {
		now := <-j.kick
		if !now && j.interval > 0 {
			// Later appends' kicks are absorbed (this flush covers them);
			// Sync and Close cut the wait short.
			t := time.NewTimer(j.interval)
		gather:
			for {
				select {
				case <-t.C:
					break gather
				case now := <-j.kick:
					if now {
						break gather
					}
				}
			}
			t.Stop()
		}
		j.syncMu.Lock() // files are not closed or dropped while held
		j.mu.Lock()
		target, closed := j.written, j.closed
		files := make([]*os.File, 0, len(j.unsynced)+1)
		for _, s := range j.unsynced {
			files = append(files, s.f)
		}
		files = append(files, j.segs[len(j.segs)-1].f)
		dirDirty := j.dirDirty
		need := (target > j.durable || dirDirty) && j.err == nil
		j.mu.Unlock()
		if need {
			err := j.flush(files, dirDirty)
			j.mu.Lock()
			if err != nil {
				j.err = err
			} else {
				j.unsynced = j.unsynced[len(files)-1:]
				if dirDirty {
					j.dirDirty = false
				}
				j.durable = max(j.durable, target)
			}
			close(j.durableCh)
			j.durableCh = make(chan struct{})
			j.mu.Unlock()
		}
		j.syncMu.Unlock()
		if closed {
			return
		}
	}
}

// flush fdatasyncs the files and, if asked, the directory.
// The caller holds syncMu.
func (j *Journal) flush(files []*os.File, dir bool) error {
	for _, f := range files {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("journal: fdatasync %s: %w", f.Name(), err)
		}
	}
	if dir {
		if err := syncDir(j.dir); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: fsync dir: %w", err)
	}
	return nil
}
