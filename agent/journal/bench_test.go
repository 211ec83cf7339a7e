package journal

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppend measures raw append throughput (one record per call, no
// waiting for durability; the group commit runs behind).
func BenchmarkAppend(b *testing.B) {
	j := open(b, b.TempDir(), Options{SyncInterval: 2 * time.Millisecond})
	defer j.Close()
	r := Record{Op: OpModify, Path: "var/lib/app/data/file-000123.db", Size: 4096}
	b.ResetTimer()
	for b.Loop() {
		if _, err := j.Append(r); err != nil {
			b.Fatal(err)
		}
	}
	must(b, j.Sync())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkDurableAppend: writers each append one record and wait until it
// is durable, as capture would with a shipper waiting. Reports throughput
// and the Append-to-durable latency.
func BenchmarkDurableAppend(b *testing.B) {
	for _, interval := range []time.Duration{-1, 2 * time.Millisecond} {
		for _, writers := range []int{1, 16} {
			name := "immediate"
			if interval > 0 {
				name = interval.String()
			}
			b.Run(fmt.Sprintf("interval=%s/writers=%d", name, writers), func(b *testing.B) {
				j := open(b, b.TempDir(), Options{SyncInterval: interval})
				defer j.Close()
				var mu sync.Mutex
				var lat []time.Duration
				var wg sync.WaitGroup
				per := b.N/writers + 1
				b.ResetTimer()
				for range writers {
					wg.Go(func() {
						mine := make([]time.Duration, 0, per)
						r := Record{Op: OpModify, Path: "var/lib/app/data/file-000123.db", Size: 4096}
						for range per {
							t0 := time.Now()
							seq, err := j.Append(r)
							if err == nil {
								err = j.Wait(context.Background(), seq-1)
							}
							if err != nil {
								b.Error(err)
								return
							}
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "appends/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}

// BenchmarkDurableBatch: one writer appends batches of 256 records (as the
// capture side does with each batch of events) and waits for each to be
// durable.
func BenchmarkDurableBatch(b *testing.B) {
	j := open(b, b.TempDir(), Options{})
	defer j.Close()
	batch := make([]Record, 256)
	for b.Loop() {
		for i := range batch {
			batch[i] = Record{Op: OpModify, Path: "var/lib/app/data/file-000123.db", Size: 4096}
		}
		seq, err := j.Append(batch...)
		if err == nil {
			err = j.Wait(context.Background(), seq-1)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
}
