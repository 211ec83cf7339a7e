package hostinfo

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFactsMatchTheKernel(t *testing.T) {
	in, err := Facts()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if in.Hostname != host || in.OS != runtime.GOOS || in.Arch != runtime.GOARCH || in.CPUs != runtime.NumCPU() {
		t.Fatalf("facts %+v", in)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if in.Kernel != unix.ByteSliceToString(u.Release[:]) || in.Kernel == "" {
		t.Fatalf("kernel %q", in.Kernel)
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if want := int64(si.Totalram) * int64(si.Unit); in.MemoryBytes != want {
		t.Fatalf("memory %d, sysinfo says %d", in.MemoryBytes, want)
	}
	// The filesystem holding the test's temporary directory is a disk.
	var st unix.Statfs_t
	if err := unix.Statfs(t.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range in.Disks {
		if !strings.HasPrefix(d.Device, "/") || d.TotalBytes <= 0 || d.FreeBytes < 0 || d.FreeBytes > d.TotalBytes {
			t.Fatalf("bad disk %+v", d)
		}
		if d.TotalBytes == int64(st.Blocks)*int64(st.Bsize) {
			found = true
		}
	}
	if !found && len(in.Disks) > 0 {
		t.Logf("temp dir's filesystem (%d bytes) not among %+v (tmpfs?)", int64(st.Blocks)*int64(st.Bsize), in.Disks)
	}
	for _, a := range in.Addresses {
		if a == "127.0.0.1" || a == "::1" {
			t.Fatalf("loopback address %s reported", a)
		}
	}
}

func TestPlatformFromOSRelease(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "os-release")
	os.WriteFile(p, []byte("NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n"), 0o644)
	if got := platform(p); got != "Debian GNU/Linux 12" {
		t.Fatalf("platform %q", got)
	}
	os.WriteFile(p, []byte("PRETTY_NAME='Alpine Linux v3.20'\nNAME=x\n"), 0o644)
	if got := platform(p); got != "Alpine Linux v3.20" {
		t.Fatalf("platform %q", got)
	}
	if got := platform(filepath.Join(dir, "missing")); got != "" {
		t.Fatalf("platform of a missing file %q", got)
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/mnt/a\040b\134c`); got != `/mnt/a b\c` {
		t.Fatalf("%q", got)
	}
	if got := unescapeMount(`/x\04`); got != `/x\04` {
		t.Fatalf("%q", got)
	}
}

func TestMetricsSeeBusyCPU(t *testing.T) {
	var s Sampler
	m, err := s.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.MemoryTotalBytes <= 0 || m.MemoryUsedBytes <= 0 || m.MemoryUsedBytes > m.MemoryTotalBytes || m.Load1 < 0 {
		t.Fatalf("metrics %+v", m)
	}
	if m.CPUPercent < 0 || m.CPUPercent > 100 || m.Time.IsZero() {
		t.Fatalf("metrics %+v", m)
	}
	// Keep one core busy: the next sample must show CPU use.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	m2, err := s.Metrics()
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if floor := 100.0 / float64(runtime.NumCPU()) / 2; m2.CPUPercent < floor {
		t.Fatalf("cpu %.1f%% with one core of %d spinning, want ≥ %.1f%%", m2.CPUPercent, runtime.NumCPU(), floor)
	}
}
