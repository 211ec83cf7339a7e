package store_test

import (
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/store"
)

func TestMetrics(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		db.Now = clk.now
		job, host := ferry.JobSubject("j1"), ferry.HostSubject("h1")
		var batch []ferry.MetricSample
		for i := range 10 {
			at := clk.t.Add(time.Duration(i) * time.Minute)
			batch = append(batch,
				ferry.MetricSample{Time: at, Subject: job, Name: ferry.MetricBytesPerSecond, Value: float64(i * 1000)},
				ferry.MetricSample{Time: at, Subject: job, Name: ferry.MetricLagSeconds, Value: float64(i)},
				ferry.MetricSample{Time: at, Subject: host, Name: ferry.MetricCPUPercent, Value: 50},
			)
		}
		mustNoErr(t, db.AppendMetrics(ctx, batch))
		got, err := db.ListMetrics(ctx, ferry.MetricFilter{Subject: job, Names: []string{ferry.MetricLagSeconds}, Since: clk.t.Add(2 * time.Minute), Until: clk.t.Add(5 * time.Minute)})
		mustNoErr(t, err)
		if len(got) != 3 || got[0].Value != 2 || got[2].Value != 4 || !got[0].Time.Equal(clk.t.Add(2*time.Minute).Truncate(time.Microsecond)) {
			t.Fatalf("lag window = %+v", got)
		}
		all, err := db.ListMetrics(ctx, ferry.MetricFilter{Subject: job, Limit: 1000})
		mustNoErr(t, err)
		if len(all) != 20 {
			t.Fatalf("job samples = %d", len(all))
		}
		n, err := db.DeleteMetricsBefore(ctx, clk.t.Add(5*time.Minute))
		mustNoErr(t, err)
		if n != 15 {
			t.Fatalf("retention removed %d, want 15", n)
		}
		wantCode(t, db.AppendMetrics(ctx, []ferry.MetricSample{{Subject: job, Name: "Bad Name"}}), ferry.EINVALID)
		_, err = db.ListMetrics(ctx, ferry.MetricFilter{})
		wantCode(t, err, ferry.EINVALID)
	})
}
