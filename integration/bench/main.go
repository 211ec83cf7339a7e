// Command bench measures ferry mirror against rsync (to an rsync daemon) and
// cp -a on loopback, on the data sets of issue 3: 50,000 files of 1-8 KiB,
// 2 files of 1 GiB of random data, and a 1 GiB file with 10 scattered 4 KiB
// changes. It prints wall time, CPU time (user+sys of every process
// involved), peak RSS of each process, bytes on the wire and ratios.
//
// The transfer scenario (issue 4) mirrors the 2 x 1 GiB set with each
// payload cipher and with fast compression, and a half-compressible set
// with and without balanced compression, ferry against ferry.
//
//	go run ./integration/bench [-quick] [-cache DIR] [-only small,large,delta,transfer] [-reps N] [-ferry BIN]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	quick := flag.Bool("quick", false, "small data sets (5,000 files, 2 x 128 MiB, 128 MiB delta)")
	cache := flag.String("cache", filepath.Join(os.TempDir(), "ferry-bench"), "where data sets and targets live")
	only := flag.String("only", "small,large,delta,transfer", "comma-separated scenarios to run")
	reps := flag.Int("reps", 5, "repetitions of each transfer configuration (interleaved; the table shows medians)")
	ferryBin := flag.String("ferry", "", "use this ferry binary instead of building ./cmd/ferry (e.g. to compare builds)")
	buildOnly := flag.Bool("build-only", false, "only build the data sets (run in a child process so that the\nmeasuring process stays small: a child's peak RSS starts from its parent's)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if *buildOnly {
		if _, err := buildDatasets(*cache, sizesFor(*quick)); err != nil {
			log.Fatal(err)
		}
		return
	}

	if err := run(*cache, *quick, *only, *reps, *ferryBin); err != nil {
		log.Fatal(err)
	}
}

func run(cache string, quick bool, only string, reps int, ferryBin string) error {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	args := []string{"-build-only", "-cache", cache}
	if quick {
		args = append(args, "-quick")
	}
	child := exec.Command(os.Args[0], args...)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Run(); err != nil {
		return fmt.Errorf("build data sets: %w", err)
	}
	ds, err := datasetDirs(cache, sizesFor(quick))
	if err != nil {
		return err
	}
	bin := ferryBin
	if bin == "" {
		bin = filepath.Join(cache, "ferry")
		log.Printf("building ferry into %s", bin)
		build := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	env := &bench{cache: cache, ferry: bin}
	if err := env.setup(); err != nil {
		return err
	}
	var rows []row
	for _, sc := range strings.Split(only, ",") {
		var r []row
		switch sc {
		case "small":
			r, err = env.treeScenario("small", ds.small, true)
		case "large":
			r, err = env.treeScenario("large", ds.large, false)
		case "delta":
			r, err = env.deltaScenario(ds.deltaBase, ds.deltaChanged)
		case "transfer":
			var tr []transferRow
			if tr, err = env.transferScenario(ds.large, ds.half, reps); err == nil {
				printTransferTable(os.Stdout, tr)
			}
		default:
			return fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
		rows = append(rows, r...)
		printTable(os.Stdout, rows)
	}
	return nil
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{files: 5000, big: 128 << 20, delta: 128 << 20}
	}
	return sizes{files: 50000, big: 1 << 30, delta: 1 << 30}
}
