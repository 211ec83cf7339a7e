// Package bwlimit limits the sending rate of the data channel by weekly
// schedules (like rclone's timetable) with a token bucket that a sender is
// handed — never a global.
package bwlimit

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rate is one parsed rate token.
type rate struct {
	bytesPerSec int64 // 0 with !forbidden means unlimited
	forbidden   bool
}

// parseRate parses a rate token: "off" or "unlimited" (no limit), "0"
// (forbidden), or a non-negative decimal number of bytes per second with an
// optional binary suffix K, M, G or T (KiB = 1024), optionally followed by
// "i", "B" and/or "/s", case-insensitive: 4M, 4MiB, 4MB/s, 512k, 1.5G, 100.
// A plain number without suffix is bytes per second.
func parseRate(tok string) (rate, error) {
	s := strings.ToLower(tok)
	switch s {
	case "off", "unlimited":
		return rate{}, nil
	}
	s = strings.TrimSuffix(s, "/s")
	s = strings.TrimSuffix(s, "b")
	s = strings.TrimSuffix(s, "i")
	mult := 1.0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || s == "" || strings.ContainsAny(s, "eE+xXpP_") || math.IsNaN(v) || math.IsInf(v, 0) {
		return rate{}, fmt.Errorf("not a rate (want e.g. 4M, 512K, 1.5G, off or 0)")
	}
	if v < 0 {
		return rate{}, fmt.Errorf("negative rate")
	}
	if v == 0 {
		return rate{forbidden: true}, nil
	}
	bps := v * mult
	if bps > math.MaxInt64/2 {
		return rate{}, fmt.Errorf("rate too large")
	}
	if bps < 1 {
		return rate{}, fmt.Errorf("rate below 1 byte/s (use 0 to forbid transfers)")
	}
	return rate{bytesPerSec: int64(math.Round(bps))}, nil
}

// String formats r the way parseRate reads it back.
func (r rate) String() string {
	switch {
	case r.forbidden:
		return "0"
	case r.bytesPerSec == 0:
		return "off"
	}
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if r.bytesPerSec%u.size == 0 {
			return strconv.FormatInt(r.bytesPerSec/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(r.bytesPerSec, 10)
}
