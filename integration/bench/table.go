package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printTable prints the rows with ratios against rsync and cp -a of the
// same scenario.
func printTable(w io.Writer, rows []row) {
	ref := func(scenario, prefix string) *row {
		for i := range rows {
			if rows[i].scenario == scenario && strings.HasPrefix(rows[i].tool, prefix) {
				return &rows[i]
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\ttool\twall s\tCPU s\tpeak RSS MiB (per process)\twire bytes\tvs rsync\tvs cp -a\t")
	for _, r := range rows {
		var rss []string
		for _, p := range r.procs {
			rss = append(rss, fmt.Sprintf("%s %.0f", p.name, float64(p.maxRSS)/(1<<20)))
		}
		wire := "-"
		if r.wire >= 0 {
			wire = fmt.Sprint(r.wire)
		}
		vr, vc := "", ""
		if x := ref(r.scenario, "rsync"); x != nil && !strings.HasPrefix(r.tool, "rsync") {
			vr = fmt.Sprintf("%.2f", r.wall.Seconds()/x.wall.Seconds())
		}
		if x := ref(r.scenario, "cp"); x != nil && r.tool != "cp -a" {
			vc = fmt.Sprintf("%.2f", r.wall.Seconds()/x.wall.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t\n", r.scenario, r.tool, r.wall.Seconds(),
			r.cpu().Seconds(), strings.Join(rss, ", "), wire, vr, vc)
	}
	tw.Flush()
	fmt.Fprintln(w)
}
