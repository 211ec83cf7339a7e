// Command sync is the continuous-sync benchmark (issue 5, item 10): lag
// seen from outside (a probe file written on the source every 100 ms and
// polled for on the target) p50/p99/max, under mixed workloads of 200 and
// 1,000 operations a second and under a 50 MiB/s append stream, for Ferry
// (two `ferry agent` processes on loopback) and for lsyncd (default.rsync, delay 0), and
// how many entries differ after the writer stops.
//
//	go run ./integration/bench/sync -duration 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type scenario struct {
	name  string
	write func(ctx context.Context, src string, d time.Duration) (ops int, err error)
}

type result struct {
	scenario, tool string
	ops            int
	lag            lagStats
	convergedIn    time.Duration // -1: not within the window
	diffsAt        int           // differences when the window ended
	window         time.Duration
	note           string
}

func main() {
	duration := flag.Duration("duration", 60*time.Second, "writer duration per run")
	window := flag.Duration("window", 20*time.Second, "how long to wait for convergence after the writer stops")
	only := flag.String("only", "ferry,lsyncd", "tools to run")
	scen := flag.String("scenarios", "200,1000,append", "scenarios to run")
	work := flag.String("dir", "", "work directory (default: a temporary one)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err := run(*duration, *window, *only, *scen, *work); err != nil {
		fmt.Fprintln(os.Stderr, "bench sync:", err)
		os.Exit(1)
	}
}

func run(duration, window time.Duration, only, scen, work string) error {
	if work == "" {
		d, err := os.MkdirTemp("", "ferry-bench-sync-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	all := []scenario{
		{"mixed 200 ops/s", mixed(200)},
		{"mixed 1000 ops/s", mixed(1000)},
		{"append 50 MiB/s", appendStream(50 << 20)},
	}
	keys := map[string]string{"200": all[0].name, "1000": all[1].name, "append": all[2].name}
	want := map[string]bool{}
	for _, k := range strings.Split(scen, ",") {
		want[keys[strings.TrimSpace(k)]] = true
	}
	var ferry *ferryRig
	if strings.Contains(only, "ferry") {
		var err error
		if ferry, err = newFerryRig(filepath.Join(work, "ferry-agents")); err != nil {
			return err
		}
		defer ferry.close()
	}
	var results []result
	for i, sc := range all {
		if !want[sc.name] {
			continue
		}
		for _, tool := range []string{"ferry", "lsyncd"} {
			if !strings.Contains(only, tool) {
				continue
			}
			dir := filepath.Join(work, fmt.Sprintf("%d-%s", i, tool))
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			os.MkdirAll(src, 0o755)
			os.MkdirAll(dst, 0o755)
			seed(src)
			fmt.Fprintf(os.Stderr, "%s / %s ...\n", sc.name, tool)
			var r result
			var err error
			if tool == "ferry" {
				r, err = ferry.run(sc, src, dst, duration, window)
			} else {
				r, err = runLsyncd(sc, dir, src, dst, duration, window)
			}
			if err != nil {
				return fmt.Errorf("%s / %s: %w", sc.name, tool, err)
			}
			r.scenario, r.tool, r.window = sc.name, tool, window
			results = append(results, r)
			printRow(r)
			os.RemoveAll(dir)
		}
	}
	fmt.Println()
	printTable(results, duration)
	return nil
}

// seed puts a small tree in place before a run.
func seed(src string) {
	for i := range 200 {
		p := filepath.Join(src, fmt.Sprintf("seed/d%d/f%d", i%10, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat("seed ", 200+i)), 0o644)
	}
}

func printRow(r result) {
	fmt.Fprintf(os.Stderr, "  %d ops, lag p50 %s p99 %s max %s (%d probes, %d lost), %s\n", r.ops,
		ms(r.lag.p50), ms(r.lag.p99), ms(r.lag.max), r.lag.n, r.lag.lost, convergence(r))
}

func convergence(r result) string {
	if r.convergedIn >= 0 {
		return fmt.Sprintf("0 differences after %s", r.convergedIn.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d differences %s after the writer stopped", r.diffsAt, r.window)
}

func printTable(rs []result, d time.Duration) {
	fmt.Printf("continuous sync, writer %s per run, probe every 100 ms\n\n", d)
	fmt.Printf("| scenario | tool | ops | lag p50 | lag p99 | lag max | probes (lost) | after the writer stopped |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Printf("| %s | %s | %d | %s | %s | %s | %d (%d) | %s |\n", r.scenario, r.tool, r.ops,
			ms(r.lag.p50), ms(r.lag.p99), ms(r.lag.max), r.lag.n, r.lag.lost, convergence(r)+r.note)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
