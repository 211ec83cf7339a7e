package hostinfo

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry"
)

// Sampler produces metrics samples. CPU use is the share of non-idle time
// in /proc/stat between two samples, so a Sampler keeps the previous one.
// It is safe for concurrent use; the zero value is ready.
type Sampler struct {
	mu   sync.Mutex // guards prev
	prev cpuTimes
}

// cpuTimes is the aggregate "cpu" line of /proc/stat.
type cpuTimes struct {
	busy, total uint64
}

// firstWindow is how long the first sample measures CPU use over.
const firstWindow = 200 * time.Millisecond

// Metrics returns a sample: CPU % since the previous call (the first call
// measures over 200 ms), the 1-minute load average, memory used (MemTotal
// minus MemAvailable) and total, and the disks. Returns an error when
// /proc/stat, /proc/loadavg or /proc/meminfo cannot be read.
func (s *Sampler) Metrics() (ferry.HostMetrics, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := readCPU()
	if err != nil {
		return ferry.HostMetrics{}, err
	}
	if s.prev.total == 0 {
		time.Sleep(firstWindow)
		s.prev = cur
		if cur, err = readCPU(); err != nil {
			return ferry.HostMetrics{}, err
		}
	}
	m := ferry.HostMetrics{Time: time.Now().UTC(), CPUPercent: cpuPercent(s.prev, cur)}
	s.prev = cur
	if m.Load1, err = load1(); err != nil {
		return m, err
	}
	mem, err := meminfo()
	if err != nil {
		return m, err
	}
	m.MemoryTotalBytes = mem["MemTotal"]
	avail, ok := mem["MemAvailable"]
	if !ok {
		avail = mem["MemFree"] + mem["Buffers"] + mem["Cached"]
	}
	m.MemoryUsedBytes = max(m.MemoryTotalBytes-avail, 0)
	m.Disks = Disks()
	return m, nil
}

func cpuPercent(a, b cpuTimes) float64 {
	if b.total <= a.total || b.busy < a.busy {
		return 0
	}
	p := 100 * float64(b.busy-a.busy) / float64(b.total-a.total)
	return min(max(p, 0), 100)
}

// readCPU parses the aggregate cpu line of /proc/stat: user nice system idle
// iowait irq softirq steal (guest time is already in user and nice).
func readCPU() (cpuTimes, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("hostinfo: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("hostinfo: unexpected /proc/stat line %q", line)
	}
	var t cpuTimes
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("hostinfo: /proc/stat field %d: %w", i+1, err)
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t, nil
}

func load1() (float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, fmt.Errorf("hostinfo: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("hostinfo: empty /proc/loadavg")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("hostinfo: /proc/loadavg: %w", err)
	}
	return v, nil
}
