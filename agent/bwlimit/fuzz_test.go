package bwlimit

import (
	"testing"
	"time"
)

// FuzzParseSchedule: any input either parses into a schedule whose RateAt
// answers consistently, or fails with a *ParseError; never a panic.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"4M", "off", "0", "Mon-Fri 08:00-18:00 10M; Sat,Sun 00:00-24:00 off; * 00:00-24:00 50M",
		"Fri-Mon 22:00-06:00 0", "Sat, Sun 00:00-24:00 1M;", ";;", "Mon 24:00-01:00 1M", "1.5G/s"} {
		f.Add(s)
	}
	base := time.Date(2026, 11, 23, 0, 0, 0, 0, zone)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseScheduleIn(spec, zone)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("%q: error of type %T", spec, err)
			}
			return
		}
		for h := 0; h < 8*24; h += 7 {
			tm := base.Add(time.Duration(h)*time.Hour + 17*time.Minute)
			bps, forbidden, next := s.RateAt(tm)
			if bps < 0 || (forbidden && bps != 0) {
				t.Fatalf("%q at %v: %d %v", spec, tm, bps, forbidden)
			}
			if next.IsZero() {
				continue
			}
			if !next.After(tm) {
				t.Fatalf("%q at %v: next change %v not after", spec, tm, next)
			}
			// Nothing changes before next, something does at next.
			b2, f2, _ := s.RateAt(next.Add(-time.Second))
			b3, f3, _ := s.RateAt(next)
			if b2 != bps || f2 != forbidden || (b3 == bps && f3 == forbidden) {
				t.Fatalf("%q at %v: next change %v is not where the rate changes", spec, tm, next)
			}
		}
	})
}
