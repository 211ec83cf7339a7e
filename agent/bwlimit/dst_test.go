package bwlimit

import (
	"testing"
	"time"
	_ "time/tzdata" // the test needs Europe/Berlin whatever the host has
)

// TestDaylightSavingTime: windows are wall-clock times of the zone, so a
// window in the repeated hour of the autumn change lasts two real hours,
// and one in the skipped hour of the spring change does not happen.
func TestDaylightSavingTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseScheduleIn("* 02:00-03:00 0; * 00:00-24:00 1M", berlin)
	if err != nil {
		t.Fatal(err)
	}
	// 2026-10-25: 03:00 CEST becomes 02:00 CET. 00:30 UTC is 02:30 CEST.
	_, forbidden, next := s.RateAt(time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC))
	if !forbidden || !next.Equal(time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("autumn: forbidden %v until %v, want until 02:00 UTC (03:00 CET)", forbidden, next.UTC())
	}
	// 2026-03-29: 02:00 CET becomes 03:00 CEST; 00:30 UTC is 01:30 CET.
	bps, forbidden, next := s.RateAt(time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC))
	if bps != 1<<20 || forbidden || !next.Equal(time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("spring: %d %v next %v, want 1M until the next day's 02:00 CEST", bps, forbidden, next.UTC())
	}
}
