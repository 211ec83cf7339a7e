package bwlimit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRates(t *testing.T) {
	for spec, want := range map[string]rate{
		"4M":        {bytesPerSec: 4 << 20},
		"4MiB/s":    {bytesPerSec: 4 << 20},
		"4mb":       {bytesPerSec: 4 << 20},
		"4M/s":      {bytesPerSec: 4 << 20},
		"512K":      {bytesPerSec: 512 << 10},
		"1.5G":      {bytesPerSec: 3 << 29},
		"100":       {bytesPerSec: 100},
		"100B/s":    {bytesPerSec: 100},
		" 10M ":     {bytesPerSec: 10 << 20},
		"off":       {},
		"OFF":       {},
		"unlimited": {},
		"0":         {forbidden: true},
		"0M":        {forbidden: true},
	} {
		s, err := ParseSchedule(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		bps, forbidden, next := s.RateAt(time.Now())
		if bps != want.bytesPerSec || forbidden != want.forbidden || !next.IsZero() {
			t.Errorf("%q: RateAt = %d, %v, %v; want %d, %v, never", spec, bps, forbidden, next, want.bytesPerSec, want.forbidden)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		spec, token string
		pos         int
		msg         string
	}{
		{"4Q", "4Q", 1, "bad rate"},
		{"-1M", "-1M", 1, "bad rate"},
		{"1e9", "1e9", 1, "bad rate"},
		{"", "", 1, "empty"},
		{"Mon-Fry 08:00-18:00 10M", "Fry", 5, "bad day"},
		{"Mon 8:00-25:00 1M", "8:00-25:00", 5, "bad time window"},
		{"Mon 08:00-18:00", "Mon", 1, "incomplete window"},
		{"Mon 08:00-08:00 1M", "08:00-08:00", 5, "empty window"},
		{"Mon 24:00-08:00 1M", "24:00-08:00", 5, "bad time window"},
		{"Mon 08:00-18:00 -1M", "-1M", 17, "bad rate"},
		{"Mon 08:00-18:00 1M; Tue 09:00 2M", "09:00", 25, "bad time window"},
		{"Mon 08:00-18:00 1M; Tue 09:00-10:00", "Tue", 21, "incomplete window"},
		{"Mon foo 08:00-18:00 1M", "foo", 5, "unexpected token"},
		{"Mon,Xyz 08:00-18:00 1M", "Xyz", 5, "bad day"},
		{";", ";", 1, "no window"},
	} {
		_, err := ParseSchedule(tc.spec)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: err = %v, want *ParseError", tc.spec, err)
			continue
		}
		if pe.Token != tc.token || pe.Pos != tc.pos || !strings.Contains(pe.Msg, tc.msg) {
			t.Errorf("%q: got token %q pos %d msg %q; want %q at %d, %q", tc.spec, pe.Token, pe.Pos, pe.Msg, tc.token, tc.pos, tc.msg)
		}
		if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "position") {
			t.Errorf("%q: message %q", tc.spec, err)
		}
	}
}

// zone is an arbitrary non-UTC zone so that the tests do not depend on the
// machine's time zone and prove times are read in the schedule's zone.
var zone = time.FixedZone("UTC+3", 3*3600)

// at returns a time in zone in the week of Monday 2026-11-23.
func at(day time.Weekday, hh, mm, ss int) time.Time {
	d := 23 + (int(day)+6)%7 // Monday is the 23rd
	return time.Date(2026, 11, d, hh, mm, ss, 0, zone)
}

func TestRateAt(t *testing.T) {
	week, err := ParseScheduleIn("Mon-Fri 08:00-18:00 10M; Sat, Sun 00:00-24:00 off; * 00:00-24:00 50M", zone)
	if err != nil {
		t.Fatal(err)
	}
	night, err := ParseScheduleIn("Fri 22:00-06:00 0; * 00:00-24:00 1M", zone)
	if err != nil {
		t.Fatal(err)
	}
	nextWeek := func(tm time.Time) time.Time { return tm.AddDate(0, 0, 7) }
	for _, tc := range []struct {
		name      string
		s         *Schedule
		t         time.Time
		bps       int64
		forbidden bool
		next      time.Time
	}{
		{"before work", week, at(time.Monday, 7, 59, 59), 50 << 20, false, at(time.Monday, 8, 0, 0)},
		{"work starts", week, at(time.Monday, 8, 0, 0), 10 << 20, false, at(time.Monday, 18, 0, 0)},
		{"work ends", week, at(time.Wednesday, 18, 0, 0), 50 << 20, false, at(time.Thursday, 8, 0, 0)},
		{"friday evening", week, at(time.Friday, 18, 0, 0), 50 << 20, false, at(time.Saturday, 0, 0, 0)},
		{"weekend", week, at(time.Saturday, 12, 0, 0), Unlimited, false, nextWeek(at(time.Monday, 0, 0, 0))},
		{"last second of weekend", week, at(time.Sunday, 23, 59, 59), Unlimited, false, nextWeek(at(time.Monday, 0, 0, 0))},
		{"other zone", week, at(time.Monday, 8, 30, 0).UTC(), 10 << 20, false, at(time.Monday, 18, 0, 0)},
		{"night starts", night, at(time.Friday, 22, 0, 0), 0, true, at(time.Saturday, 6, 0, 0)},
		{"after midnight", night, at(time.Saturday, 5, 59, 59), 0, true, at(time.Saturday, 6, 0, 0)},
		{"saturday night", night, at(time.Saturday, 23, 0, 0), 1 << 20, false, at(time.Friday, 22, 0, 0).AddDate(0, 0, 7)},
		{"thursday morning", night, at(time.Thursday, 5, 0, 0), 1 << 20, false, at(time.Friday, 22, 0, 0)},
		{"nil schedule", nil, at(time.Monday, 0, 0, 0), Unlimited, false, time.Time{}},
	} {
		bps, forbidden, next := tc.s.RateAt(tc.t)
		if bps != tc.bps || forbidden != tc.forbidden || !next.Equal(tc.next) {
			t.Errorf("%s: RateAt(%v) = %d, %v, %v; want %d, %v, %v", tc.name, tc.t, bps, forbidden, next, tc.bps, tc.forbidden, tc.next)
		}
	}
}

func TestScheduleNoMatchIsUnlimited(t *testing.T) {
	s, err := ParseScheduleIn("Tue 10:00-11:00 1M", zone)
	if err != nil {
		t.Fatal(err)
	}
	bps, forbidden, next := s.RateAt(at(time.Monday, 10, 30, 0))
	if bps != Unlimited || forbidden || !next.Equal(at(time.Tuesday, 10, 0, 0)) {
		t.Errorf("outside windows: %d %v %v", bps, forbidden, next)
	}
}
