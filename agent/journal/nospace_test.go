package journal

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiskFull fills a small filesystem: the failing Append reports the
// error (not ErrFull), leaves no partial record, and everything appended
// before it survives a reopen.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("needs mount -t tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	dir := filepath.Join(mnt, "j")
	j := open(t, dir, Options{MaxBytes: 1 << 30, SegmentBytes: 1 << 20})
	var last uint64
	var werr error
	for last < 100000 {
		batch := make([]Record, 50)
		for i := range batch {
			batch[i] = rec(last + 1 + uint64(i))
		}
		s, err := j.Append(batch...)
		if err != nil {
			werr = err
			break
		}
		last = s
	}
	if !errors.Is(werr, unix.ENOSPC) || errors.Is(werr, ErrFull) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", werr)
	}
	if err := j.Sync(); err != nil {
		t.Fatalf("sync after a failed append: %v", err)
	}
	if got := readAll(t, j, 1); got != last {
		t.Fatalf("readable through %d, appended through %d", got, last)
	}
	j.Close()
	j = open(t, dir, Options{MaxBytes: 1 << 30, SegmentBytes: 1 << 20})
	defer j.Close()
	if j.Last() != last {
		t.Fatalf("after reopen last %d, want %d", j.Last(), last)
	}
	if got := readAll(t, j, 1); got != last {
		t.Fatalf("after reopen readable through %d", got)
	}
}
