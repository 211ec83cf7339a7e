package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"
)

// transferRow is one ferry mirror configuration with payload options
// (issue 4), measured several times.
type transferRow struct {
	data string // data set
	opts string
	runs []row        // one per repetition, in the order run
	base *transferRow // the same data set without payload options
	goal string
}

// median returns the median of the values f takes over the runs (the
// mean of the middle two for an even count).
func (t transferRow) median(f func(row) float64) float64 {
	v := make([]float64, len(t.runs))
	for i, r := range t.runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func wallOf(r row) float64 { return r.wall.Seconds() }
func cpuOf(r row) float64  { return r.cpu().Seconds() }

// procCPU returns the CPU seconds of process i of a run (0: source agent,
// 1: target agent, 2: CLI).
func procCPU(i int) func(row) float64 {
	return func(r row) float64 {
		if i < len(r.procs) {
			return r.procs[i].cpu.Seconds()
		}
		return 0
	}
}

// throughput in MiB/s of payload bytes (content before compression) at
// the median wall time.
func (t transferRow) throughput() float64 {
	return float64(t.runs[0].payload) / (1 << 20) / t.median(wallOf)
}

// pairedRatio is the median over repetitions of base wall / this wall,
// each pair from the same round (so slow drifts of the machine cancel).
func (t transferRow) pairedRatio() float64 {
	p := transferRow{runs: make([]row, len(t.runs))}
	for i := range t.runs {
		p.runs[i].wall = time.Duration(float64(time.Second) * t.base.runs[i].wall.Seconds() / t.runs[i].wall.Seconds())
	}
	return p.median(wallOf)
}

// transferScenario mirrors large (random data) with no payload options,
// AES-256-GCM, SM4-GCM and fast compression, and half (half-compressible)
// without and with balanced compression. It runs reps rounds; each round
// runs every configuration once, starting at a different one each round
// (interleaved, so that noise from other processes spreads over all of
// them), and the table reports medians.
func (b *bench) transferScenario(large, half string, reps int) ([]transferRow, error) {
	key := filepath.Join(b.cache, "payload.key")
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		return nil, err
	}
	warm(large)
	warm(half)
	type cfg struct {
		data, src string
		args      []string
		goal      string
	}
	cfgs := []cfg{
		{"2 large random", large, nil, ""},
		{"2 large random", large, []string{"--encrypt", "aes", "--key-file", key}, "throughput >= 0.90 x none"},
		{"2 large random", large, []string{"--encrypt", "sm4", "--key-file", key}, ">= 300 MiB/s per core"},
		{"2 large random", large, []string{"--compress", "fast"}, "wall <= 1.03 x off"},
		{"half-compressible", half, nil, ""},
		{"half-compressible", half, []string{"--compress", "balanced"}, "compressed <= 0.55 x payload"},
	}
	tgt := filepath.Join(b.cache, "target-transfer")
	runs := make([][]row, len(cfgs))
	for round := range max(reps, 1) {
		for k := range cfgs {
			i := (k + round) % len(cfgs)
			c := cfgs[i]
			if err := fresh(tgt); err != nil {
				return nil, err
			}
			syncDisks()
			r, err := b.ferryRun("transfer "+c.data, c.src, tgt, c.args...)
			if err != nil {
				return nil, err
			}
			runs[i] = append(runs[i], r)
		}
	}
	os.RemoveAll(tgt)
	out := make([]transferRow, len(cfgs))
	var base *transferRow
	for i, c := range cfgs {
		opts := "none"
		if len(c.args) > 0 {
			opts = c.args[0] + " " + c.args[1]
		}
		out[i] = transferRow{data: c.data, opts: opts, runs: runs[i], goal: c.goal}
		if c.args == nil {
			base = &out[i]
		} else {
			out[i].base = base
		}
	}
	return out, nil
}

// printTransferTable prints the transfer rows (medians over the
// repetitions) with ratios against the same data set without payload
// options: "vs none" compares medians, "paired" is the median of the
// per-round ratios.
func printTransferTable(w io.Writer, rows []transferRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "data\tpayload options\truns\twall s (min-max)\tMiB/s\tCPU s\tsrc agent CPU s\tdst agent CPU s\tpayload MiB\tcompressed MiB\tsent/payload\tthroughput vs none\tpaired\tCPU vs none\tgoal\t")
	for _, t := range rows {
		if len(t.runs) == 0 {
			continue
		}
		lo, hi := t.runs[0].wall, t.runs[0].wall
		for _, r := range t.runs {
			lo, hi = min(lo, r.wall), max(hi, r.wall)
		}
		vt, vp, vc := "", "", ""
		if t.base != nil {
			vt = fmt.Sprintf("%.3f", t.throughput()/t.base.throughput())
			vp = fmt.Sprintf("%.3f", t.pairedRatio())
			vc = fmt.Sprintf("%.3f", t.median(cpuOf)/t.base.median(cpuOf))
		}
		r := t.runs[0]
		sent := ""
		if r.payload > 0 {
			sent = fmt.Sprintf("%.3f", float64(r.compressed)/float64(r.payload))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f (%.2f-%.2f)\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", t.data, t.opts,
			len(t.runs), t.median(wallOf), lo.Seconds(), hi.Seconds(), t.throughput(), t.median(cpuOf),
			t.median(procCPU(0)), t.median(procCPU(1)), float64(r.payload)/(1<<20),
			float64(r.compressed)/(1<<20), sent, vt, vp, vc, t.goal)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
