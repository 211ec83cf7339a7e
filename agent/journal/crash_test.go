package journal

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const crashDirEnv = "FERRY_JOURNAL_CRASH_DIR"

// crashChild is the body of the child process: it appends batches as fast as
// it can (acknowledging now and then, so segments are removed while it runs)
// and prints "durable N" whenever N became durable. It never returns.
func crashChild(dir string) {
	j, err := Open(dir, Options{SegmentBytes: 32 << 10, MaxBytes: 1 << 30, SyncInterval: time.Millisecond, Logger: quiet()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	go func() {
		var printed uint64
		for {
			if err := j.Wait(context.Background(), printed); err != nil {
				fmt.Fprintln(os.Stderr, "wait:", err)
				os.Exit(2)
			}
			d := j.Durable()
			os.Stdout.WriteString("durable " + strconv.FormatUint(d, 10) + "\n")
			printed = d
			if d > 2000 && d%7 == 0 {
				if err := j.Ack(d - 2000); err != nil {
					fmt.Fprintln(os.Stderr, "ack:", err)
					os.Exit(2)
				}
			}
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	for {
		next := j.Last() + 1
		batch := make([]Record, 1+rng.IntN(60))
		for i := range batch {
			batch[i] = rec(next + uint64(i))
		}
		last, err := j.Append(batch...)
		if err != nil || last != next+uint64(len(batch))-1 {
			fmt.Fprintln(os.Stderr, "append:", last, err)
			os.Exit(2)
		}
	}
}

// TestKill9 kills a process that appends in a loop at a seeded random moment,
// several times over the same journal. After each kill every sequence number
// the child reported durable must be present, the records must be
// contiguous and uncorrupted, and numbering must continue.
func TestKill9(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes; skipped with -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FERRY_JOURNAL_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set FERRY_JOURNAL_CRASH_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	var prevLast uint64
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		lines := make(chan uint64, 1024)
		reported := make(chan uint64, 1)
		go func() {
			var max uint64
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "durable "), 10, 64); err == nil {
					max = n
					select {
					case lines <- n:
					default:
					}
				}
			}
			reported <- max
		}()
		// Kill at a random moment once the child is appending.
		deadline := time.After(20 * time.Second)
	started:
		for {
			select {
			case n := <-lines:
				if n > prevLast {
					break started
				}
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("round %d: child reported no progress", round)
			}
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		must(t, cmd.Process.Kill())
		cmd.Wait()
		maxDurable := <-reported

		j := open(t, dir, Options{SegmentBytes: 32 << 10})
		last, acked := j.Last(), j.Acked()
		if last < maxDurable {
			t.Fatalf("round %d: recovered through %d, but %d was reported durable", round, last, maxDurable)
		}
		if last <= prevLast {
			t.Fatalf("round %d: child made no progress (last %d)", round, last)
		}
		if got := readAll(t, j, acked+1); got != last {
			t.Fatalf("round %d: records contiguous through %d, last %d", round, got, last)
		}
		t.Logf("round %d: reported durable %d, recovered %d (acked %d)", round, maxDurable, last, acked)
		prevLast = last
		must(t, j.Close())
	}
}
