package bwlimit

import (
	"slices"
	"time"
)

// RateAt returns the limit in force at t: bytesPerSec (Unlimited, i.e. 0,
// when there is no limit), whether transfers are forbidden, and the next
// moment after t at which the result changes (the zero Time if it never
// does). A nil Schedule is unlimited.
func (s *Schedule) RateAt(t time.Time) (bytesPerSec int64, forbidden bool, nextChange time.Time) {
	if s == nil {
		return Unlimited, false, time.Time{}
	}
	cur := s.lookup(t)
	return cur.bytesPerSec, cur.forbidden, s.next(t, cur)
}

// lookup returns the rate of the first window containing t.
func (s *Schedule) lookup(t time.Time) rate {
	lt := t.In(s.loc)
	wd := lt.Weekday()
	tod := lt.Hour()*60 + lt.Minute()
	for _, e := range s.entries {
		if e.contains(wd, tod) {
			return e.rate
		}
	}
	return rate{}
}

func (e *entry) contains(wd time.Weekday, tod int) bool {
	if e.start < e.end {
		return e.days[wd] && e.start <= tod && tod < e.end
	}
	// Across midnight: the evening part on a listed day, the morning part
	// on the day after one.
	return (e.days[wd] && tod >= e.start) || (e.days[(wd+6)%7] && tod < e.end)
}

// next returns the first window boundary after t where the rate differs
// from cur. Rates repeat weekly, so eight days of boundaries suffice.
func (s *Schedule) next(t time.Time, cur rate) time.Time {
	lt := t.In(s.loc)
	y, m, d := lt.Date()
	minutes := []int{0}
	for _, e := range s.entries {
		minutes = append(minutes, e.start, e.end)
	}
	slices.Sort(minutes)
	minutes = slices.Compact(minutes)
	for day := 0; day <= 8; day++ {
		for _, mins := range minutes {
			c := time.Date(y, m, d+day, mins/60, mins%60, 0, 0, s.loc)
			if !c.After(t) {
				continue
			}
			if s.lookup(c) != cur {
				return c
			}
		}
	}
	return time.Time{}
}
