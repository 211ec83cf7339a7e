package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Every initial run of the tree of small files writes into a file system
// made for it: a fresh ext4
// (with its journal, as a server's would be) on a loop device backed by a
// sparse file under the cache. Writing into the cache's own file system
// measured its history instead of the tools: on this machine's ext4
// without a journal the inode allocator skips inodes deleted in the last
// 30 s (300 s while their table block is dirty), reading each one's table
// block, so 50,000 creates after an earlier run's deletions took 2-6 times
// as long for every tool (rsync 3.0 s to 17.1 s, cp -a 2.0 s to 14.0 s in
// back-to-back runs of this benchmark), and the ratios swung with them.

// scratchSize is the size of each scratch file system (sparse: only what
// the run writes, plus the inode tables, takes space).
const scratchSize = 8 << 30

// scratchFS is a fresh file system mounted on dir.
type scratchFS struct {
	dir, img, loop string
}

// mountScratch makes a fresh ext4 and mounts it on dir (emptied first).
// The inode tables are written by mkfs, not by a background thread while
// the run is measured.
func mountScratch(dir string) (*scratchFS, error) {
	if err := fresh(dir); err != nil {
		return nil, err
	}
	s := &scratchFS{dir: dir, img: dir + ".img"}
	os.Remove(s.img)
	f, err := os.Create(s.img)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(scratchSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(s.img)
		return nil, err
	}
	out, err := exec.Command("losetup", "--find", "--show", s.img).Output()
	if err != nil {
		os.Remove(s.img)
		return nil, fmt.Errorf("losetup %s (needs root and a loop device): %w", s.img, err)
	}
	s.loop = strings.TrimSpace(string(out))
	for _, c := range [][]string{
		{"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", s.loop},
		{"mount", s.loop, dir},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			s.release()
			return nil, fmt.Errorf("%s: %v: %s", c[0], err, out)
		}
	}
	return s, nil
}

// release unmounts the file system and deletes its image.
func (s *scratchFS) release() {
	if s == nil {
		return
	}
	exec.Command("umount", s.dir).Run()
	if s.loop != "" {
		exec.Command("losetup", "-d", s.loop).Run()
	}
	os.Remove(s.img)
	os.Remove(s.dir)
}
