package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/integration/bench/agentproc"
)

// bench holds the environment of one benchmark run.
type bench struct {
	cache string
	ferry string
	ca    string
	seq   int
	// dataDirs: the agents' data directories and addresses by agent name
	// and target.
	dataDirs map[string]agentPlace
}

type agentPlace struct{ dir, addr string }

// usage is what one process cost.
type usage struct {
	name   string
	cpu    time.Duration
	maxRSS int64 // bytes
}

// row is one measured run.
type row struct {
	scenario string // e.g. "small initial"
	tool     string
	wall     time.Duration
	procs    []usage
	wire     int64 // -1 when not applicable
	note     string
	// Ferry only: payload bytes before and after compression.
	payload, compressed int64
}

func (r row) cpu() time.Duration {
	var t time.Duration
	for _, p := range r.procs {
		t += p.cpu
	}
	return t
}

func (b *bench) setup() error {
	b.ca = filepath.Join(b.cache, "ca")
	if _, err := os.Stat(filepath.Join(b.ca, "ca.key")); err == nil {
		return nil
	}
	return exec.Command(b.ferry, "ca", "init", b.ca).Run()
}

func usageOf(name string, ps *os.ProcessState) usage {
	ru, _ := ps.SysUsage().(*syscall.Rusage)
	u := usage{name: name}
	if ru != nil {
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.maxRSS = ru.Maxrss * 1024
	}
	return u
}

// daemon is a background process (an agent or an rsync daemon).
type daemon struct {
	name string
	cmd  *exec.Cmd
	addr string
}

// startAgent starts a ferry agent with a new data directory, or with
// the one of the run before that wrote into the same target (dst): a
// re-mirror is run by the same agents as the mirror before it, and their
// job state (its run completed, its temporaries gone) spares the orphan
// walk of the target tree.
func (b *bench) startAgent(name, dst string) (*daemon, error) {
	b.seq++
	key := name + "\x00" + dst
	if b.dataDirs == nil {
		b.dataDirs = map[string]agentPlace{}
	}
	// The job's identity comes from the agents' addresses: a re-mirror's
	// agents listen where the mirror's did, as daemons would.
	ag, ok := b.dataDirs[key]
	if !ok {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ag = agentPlace{dir: filepath.Join(b.cache, "agents", fmt.Sprintf("%s-%d", name, b.seq)), addr: l.Addr().String()}
		l.Close()
		os.RemoveAll(ag.dir)
		b.dataDirs[key] = ag
	}
	cmd, addr, err := agentproc.Start(b.ferry, ag.addr, ag.dir, b.ca, "warn")
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", name, err)
	}
	return &daemon{name: name, cmd: cmd, addr: addr}, nil
}

// stop ends a daemon with SIGTERM and returns its resource usage.
func (d *daemon) stop() usage {
	hwm := vmHWM(d.cmd.Process.Pid)
	agentproc.Stop(d.cmd, 10*time.Second)
	u := usageOf(d.name, d.cmd.ProcessState)
	if hwm > 0 && d.name != "rsyncd" { // rsyncd's children count too: keep rusage
		u.maxRSS = hwm
	}
	return u
}

// vmHWM returns the peak resident set of a live process (its own image,
// unlike rusage, which starts from the parent's peak at fork).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// measure runs a command to completion.
func measure(name string, args ...string) (usage, time.Duration, []byte, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return usage{}, wall, out.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return usageOf(name, cmd.ProcessState), wall, out.Bytes(), nil
}

// warm reads every file of dir so that runs start with a warm cache.
func warm(dir string) {
	exec.Command("sh", "-c", "find '"+dir+"' -type f -print0 | xargs -0 cat > /dev/null").Run()
}

func fresh(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// ferryRun runs one ferry mirror with fresh agents.
func (b *bench) ferryRun(scenario, src, dst string, extra ...string) (row, error) {
	sa, err := b.startAgent("src-agent", dst)
	if err != nil {
		return row{}, err
	}
	ta, err := b.startAgent("dst-agent", dst)
	if err != nil {
		sa.stop()
		return row{}, err
	}
	args := append([]string{b.ferry, "mirror", "--ca", b.ca, "--from", sa.addr + ":" + src, "--to", ta.addr + ":" + dst, "--json"}, extra...)
	u, wall, out, err := measure("cli", args...)
	su, tu := sa.stop(), ta.stop()
	if err != nil {
		return row{}, err
	}
	var sum struct {
		BytesOnWire   int64 `json:"bytes_on_wire"`
		BytesFromPeer int64 `json:"bytes_from_target"`
		FilesSent     int64 `json:"files_sent"`
		Payload       int64 `json:"payload_bytes"`
		Compressed    int64 `json:"payload_bytes_compressed"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		return row{}, fmt.Errorf("ferry summary: %w: %s", err, out)
	}
	tool := "ferry " + strings.Join(extra, " ")
	r := row{scenario: scenario, tool: strings.TrimSpace(tool), wall: wall, procs: []usage{su, tu, u},
		wire: sum.BytesOnWire + sum.BytesFromPeer, note: fmt.Sprintf("%d files sent", sum.FilesSent),
		payload: sum.Payload, compressed: sum.Compressed}
	log.Printf("%-16s %-22s %6.2fs", scenario, r.tool, wall.Seconds())
	return r, nil
}

var statRE = regexp.MustCompile(`Total bytes (sent|received): ([\d,]+)`)

// rsyncRun pushes src to an rsync daemon serving dst.
func (b *bench) rsyncRun(scenario, src, dst string, extra ...string) (row, error) {
	b.seq++
	conf := filepath.Join(b.cache, fmt.Sprintf("rsyncd-%d.conf", b.seq))
	port := 20000 + os.Getpid()%20000 + b.seq
	cfg := fmt.Sprintf("use chroot = no\nuid = root\ngid = root\npid file = %s.pid\n[dst]\n  path = %s\n  read only = false\n", conf, dst)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return row{}, err
	}
	cmd := exec.Command("rsync", "--daemon", "--no-detach", "--port", strconv.Itoa(port), "--address", "127.0.0.1", "--config", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return row{}, err
	}
	d := &daemon{name: "rsyncd", cmd: cmd}
	url := fmt.Sprintf("rsync://127.0.0.1:%d/dst/", port)
	for i := 0; i < 50; i++ { // wait for the daemon
		if exec.Command("rsync", url).Run() == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	args := append([]string{"rsync", "-a", "--stats"}, extra...)
	args = append(args, src+"/", url)
	u, wall, out, err := measure("rsync", args...)
	du := d.stop()
	if err != nil {
		return row{}, err
	}
	var wire int64
	for _, m := range statRE.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.ParseInt(strings.ReplaceAll(m[2], ",", ""), 10, 64)
		wire += n
	}
	r := row{scenario: scenario, tool: strings.TrimSpace("rsync -a " + strings.Join(extra, " ")), wall: wall,
		procs: []usage{u, du}, wire: wire}
	log.Printf("%-16s %-22s %6.2fs", scenario, r.tool, wall.Seconds())
	return r, nil
}

func (b *bench) cpRun(scenario, src, dst string) (row, error) {
	u, wall, _, err := measure("cp", "cp", "-a", src+"/.", dst+"/")
	if err != nil {
		return row{}, err
	}
	log.Printf("%-16s %-22s %6.2fs", scenario, "cp -a", wall.Seconds())
	return row{scenario: scenario, tool: "cp -a", wall: wall, procs: []usage{u}, wire: -1}, nil
}

// syncDisks flushes dirty data left by earlier runs (outside any timing),
// so that a run does not pay for the write-back of the one before.
func syncDisks() { exec.Command("sync").Run() }

// treeScenario: initial mirrors (two rounds, the tools interleaved, the
// faster run of each kept: this shared machine is noisy), then no-change
// re-runs against each tool's own target. With scratch, every initial run
// writes into a fresh file system of its own (scratchfs.go: for the tree
// of 50,000 files), else into a fresh directory of the cache's file system
// (2 large files: no inode churn, and a loop device would add its own cost
// to every fdatasync, which ferry's checkpoints do and rsync and cp never);
// targets are kept until the last run.
func (b *bench) treeScenario(name, src string, scratch bool) ([]row, error) {
	warm(src)
	tgt := map[string]string{}
	var all []*scratchFS
	var dirs []string
	defer func() {
		for _, fs := range all {
			fs.release()
		}
		for _, d := range dirs {
			os.RemoveAll(d)
		}
		syncDisks()
	}()
	run := map[string]func() (row, error){
		"ferry": func() (row, error) { return b.ferryRun(name+" initial", src, tgt["ferry"]) },
		"rsync": func() (row, error) { return b.rsyncRun(name+" initial", src, tgt["rsync"]) },
		"cp":    func() (row, error) { return b.cpRun(name+" initial", src, tgt["cp"]) },
	}
	best := map[string]row{}
	for round := range 2 {
		for _, tool := range []string{"ferry", "rsync", "cp"} {
			tgt[tool] = filepath.Join(b.cache, fmt.Sprintf("target-%s-%d", tool, round))
			if scratch {
				fs, err := mountScratch(tgt[tool])
				if err != nil {
					return nil, err
				}
				all = append(all, fs)
			} else {
				if err := fresh(tgt[tool]); err != nil {
					return nil, err
				}
				dirs = append(dirs, tgt[tool])
			}
			syncDisks()
			r, err := run[tool]()
			if err != nil {
				return nil, err
			}
			if round == 0 || r.wall < best[tool].wall {
				best[tool] = r
			}
		}
	}
	rows := []row{best["ferry"]}
	more := []func() (row, error){
		func() (row, error) { return b.ferryRun(name+" no-change", src, tgt["ferry"], "--checksum", "time") },
		func() (row, error) {
			return b.ferryRun(name+" no-change -c", src, tgt["ferry"], "--checksum", "strict")
		},
		func() (row, error) { return best["rsync"], nil },
		func() (row, error) { return b.rsyncRun(name+" no-change", src, tgt["rsync"]) },
		func() (row, error) { return b.rsyncRun(name+" no-change -c", src, tgt["rsync"], "-c") },
		func() (row, error) { return best["cp"], nil },
	}
	for _, f := range more {
		syncDisks()
		r, err := f()
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// deltaScenario: the target holds the base; the source has 10 scattered
// 4 KiB changes.
func (b *bench) deltaScenario(base, changed string) ([]row, error) {
	warm(base)
	warm(changed)
	var rows []row
	tgt := filepath.Join(b.cache, "target")
	run := func(tool string) (row, error) {
		if err := fresh(tgt); err != nil {
			return row{}, err
		}
		defer os.RemoveAll(tgt)
		if _, _, _, err := measure("cp", "cp", "-a", base+"/.", tgt+"/"); err != nil {
			return row{}, err
		}
		warm(tgt)
		syncDisks()
		if tool == "ferry" {
			return b.ferryRun("delta 10x4KiB", changed, tgt)
		}
		return b.rsyncRun("delta 10x4KiB", changed, tgt)
	}
	for _, tool := range []string{"ferry", "rsync"} {
		r, err := run(tool)
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}
