package bwlimit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unlimited is the bytesPerSec RateAt reports when no limit applies (with
// forbidden == false).
const Unlimited int64 = 0

// Schedule is a parsed bandwidth specification: either one rate at all
// times, or weekly windows of which the first matching one applies. A nil
// *Schedule means unlimited.
type Schedule struct {
	spec    string
	entries []entry
	loc     *time.Location
}

// entry is one "DAYS HH:MM-HH:MM RATE" window. Minutes count from local
// midnight; start > end is a window across midnight whose part after
// midnight belongs to the day after a listed day.
type entry struct {
	days       [7]bool // indexed by time.Weekday
	start, end int     // minutes, 0..1440
	rate       rate
}

// ParseError reports a bad token of a bandwidth specification.
type ParseError struct {
	Spec  string // the whole specification
	Pos   int    // 1-based byte position of Token in Spec
	Token string
	Msg   string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("bwlimit: %s: %q at position %d of %q", e.Msg, e.Token, e.Pos, e.Spec)
}

// ParseSchedule parses a bandwidth specification in the agent's local time
// zone. It is either
//
//   - one rate: "4M" (4 MiB/s; suffixes K, M, G, T are binary, and a
//     trailing "i", "B" or "/s" is tolerated: 4MiB/s), "off" (unlimited) or
//     "0" (transfers forbidden); or
//   - ";"-separated windows "DAYS HH:MM-HH:MM RATE", e.g.
//     "Mon-Fri 08:00-18:00 10M; Sat,Sun 00:00-24:00 off; * 00:00-24:00 50M".
//     DAYS is "*" or a comma-separated list of days (Mon or Monday, case
//     insensitive) and ranges (Mon-Fri, Fri-Mon wraps). Times are 00:00 to
//     24:00; a start after the end spans midnight. The first window
//     containing a moment gives its rate; outside every window there is no
//     limit. A rate of 0 forbids transfers in that window.
//
// Returns a *ParseError naming the bad token and its position.
func ParseSchedule(spec string) (*Schedule, error) {
	return ParseScheduleIn(spec, time.Local)
}

// ParseScheduleIn is ParseSchedule with windows in loc instead of the
// local time zone.
func ParseScheduleIn(spec string, loc *time.Location) (*Schedule, error) {
	s := &Schedule{spec: strings.TrimSpace(spec), loc: loc}
	toks := tokenize(spec)
	if len(toks) == 0 {
		return nil, &ParseError{Spec: spec, Pos: 1, Token: spec, Msg: "empty bandwidth specification"}
	}
	fail := func(t token, format string, args ...any) error {
		return &ParseError{Spec: spec, Pos: t.pos + 1, Token: t.text, Msg: fmt.Sprintf(format, args...)}
	}
	if len(toks) == 1 && toks[0].text != ";" {
		r, err := parseRate(toks[0].text)
		if err != nil {
			return nil, fail(toks[0], "bad rate (%v)", err)
		}
		s.entries = []entry{{days: allDays(), start: 0, end: 1440, rate: r}}
		return s, nil
	}
	for group := range splitEntries(toks) {
		if len(group) == 0 {
			continue
		}
		if len(group) < 3 {
			return nil, fail(group[0], "incomplete window, want DAYS HH:MM-HH:MM RATE")
		}
		n := len(group)
		e := entry{}
		// DAYS may have been written with spaces after commas ("Sat, Sun").
		var err error
		if e.days, err = parseDays(group[:n-2], fail); err != nil {
			return nil, err
		}
		if e.start, e.end, err = parseWindow(group[n-2].text); err != nil {
			return nil, fail(group[n-2], "bad time window (%v)", err)
		}
		if e.rate, err = parseRate(group[n-1].text); err != nil {
			return nil, fail(group[n-1], "bad rate (%v)", err)
		}
		s.entries = append(s.entries, e)
	}
	if len(s.entries) == 0 {
		return nil, &ParseError{Spec: spec, Pos: 1, Token: spec, Msg: "no window in bandwidth specification"}
	}
	return s, nil
}

// String returns the specification the schedule was parsed from.
func (s *Schedule) String() string {
	if s == nil {
		return "off"
	}
	return s.spec
}

type token struct {
	text string
	pos  int // 0-based byte offset
}

// tokenize splits spec at white space and makes each ";" its own token.
func tokenize(spec string) []token {
	var toks []token
	start := -1
	flush := func(i int) {
		if start >= 0 {
			toks = append(toks, token{spec[start:i], start})
			start = -1
		}
	}
	for i := 0; i < len(spec); i++ {
		switch c := spec[i]; {
		case c == ';':
			flush(i)
			toks = append(toks, token{";", i})
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush(i)
		default:
			if start < 0 {
				start = i
			}
		}
	}
	flush(len(spec))
	return toks
}

// splitEntries yields the token groups between ";" tokens.
func splitEntries(toks []token) func(func([]token) bool) {
	return func(yield func([]token) bool) {
		for len(toks) > 0 {
			i := slices.IndexFunc(toks, func(t token) bool { return t.text == ";" })
			if i < 0 {
				yield(toks)
				return
			}
			if !yield(toks[:i]) {
				return
			}
			toks = toks[i+1:]
		}
	}
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func allDays() [7]bool { return [7]bool{true, true, true, true, true, true, true} }

func parseDay(s string) (time.Weekday, bool) {
	s = strings.ToLower(s)
	full := []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	for i := range dayNames {
		if s == dayNames[i] || s == full[i] {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// parseDays parses DAYS, given as one or more tokens (spaces after commas).
func parseDays(toks []token, fail func(token, string, ...any) error) ([7]bool, error) {
	var days [7]bool
	for ti, t := range toks {
		if ti > 0 && !strings.HasSuffix(toks[ti-1].text, ",") && !strings.HasPrefix(t.text, ",") {
			return days, fail(t, "unexpected token, want DAYS HH:MM-HH:MM RATE")
		}
		off := 0
		for part := range strings.SplitSeq(t.text, ",") {
			ptok := token{part, t.pos + off}
			off += len(part) + 1
			if part == "" {
				continue
			}
			if part == "*" {
				days = allDays()
				continue
			}
			from, to, isRange := strings.Cut(part, "-")
			a, ok := parseDay(from)
			if !ok {
				return days, fail(token{from, ptok.pos}, "bad day (want Mon..Sun, a range like Mon-Fri, or *)")
			}
			if !isRange {
				days[a] = true
				continue
			}
			b, ok := parseDay(to)
			if !ok {
				return days, fail(token{to, ptok.pos + len(from) + 1}, "bad day (want Mon..Sun, a range like Mon-Fri, or *)")
			}
			for d := a; ; d = (d + 1) % 7 {
				days[d] = true
				if d == b {
					break
				}
			}
		}
	}
	if days == [7]bool{} {
		return days, fail(toks[0], "no day")
	}
	return days, nil
}

// parseWindow parses "HH:MM-HH:MM" into minutes since midnight.
func parseWindow(s string) (start, end int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want HH:MM-HH:MM")
	}
	if start, err = parseClock(a); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock(b); err != nil {
		return 0, 0, err
	}
	if start == 1440 {
		return 0, 0, fmt.Errorf("a window cannot start at 24:00")
	}
	if start == end {
		return 0, 0, fmt.Errorf("empty window")
	}
	if end == 0 {
		end = 1440 // "22:00-00:00" means until midnight
	}
	return start, end, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(m) != 2 || len(h) < 1 || len(h) > 2 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time between 00:00 and 24:00", s)
	}
	return hh*60 + mm, nil
}
