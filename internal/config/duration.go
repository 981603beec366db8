package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// durationUnits are Flink's TimeUtils unit labels (singular and plural).
var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "nano": time.Nanosecond, "nanos": time.Nanosecond,
	"nanosecond": time.Nanosecond, "nanoseconds": time.Nanosecond,
	"µs": time.Microsecond, "us": time.Microsecond, "micro": time.Microsecond, "micros": time.Microsecond,
	"microsecond": time.Microsecond, "microseconds": time.Microsecond,
	"": time.Millisecond, "ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
}

// byteUnits are Flink's MemorySize unit labels; all are powers of 1024.
var byteUnits = map[string]int64{
	"": 1, "b": 1, "bytes": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "kibibytes": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "mebibytes": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "gibibytes": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40, "tebibytes": 1 << 40,
}

var errSyntax = errors.New("invalid syntax")

// splitNumber splits "10 s" into 10 and "s" (unit lower-cased).
func splitNumber(s string) (int64, string, error) {
	s = strings.TrimSpace(s)
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, "", errSyntax
	}
	return n, strings.ToLower(strings.TrimSpace(s[i:])), nil
}

// ParseDuration parses a duration in Flink's format: an integer and an
// optional unit ("10 s", "10s", "1 min", "500 millis", "2 h", "1 d"); a bare
// integer is milliseconds, as in Flink. Go durations such as "1m30s" are
// accepted too.
func ParseDuration(s string) (time.Duration, error) {
	n, unit, err := splitNumber(s)
	if err == nil {
		if u, ok := durationUnits[unit]; ok {
			if n > math.MaxInt64/int64(u) || n < math.MinInt64/int64(u) {
				return 0, errors.New("duration out of range")
			}
			return time.Duration(n) * u, nil
		}
	}
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
		return d, nil
	}
	return 0, errSyntax
}

// ParseBytes parses a memory size in Flink's format: a non-negative integer
// and an optional unit ("64mb", "1 gb", "64 MiB", "1048576"). Units are
// case-insensitive powers of 1024.
func ParseBytes(s string) (int64, error) {
	n, unit, err := splitNumber(s)
	if err != nil || n < 0 || strings.HasPrefix(strings.TrimSpace(s), "+") {
		return 0, errSyntax
	}
	u, ok := byteUnits[unit]
	if !ok {
		return 0, errSyntax
	}
	if n > math.MaxInt64/u {
		return 0, errors.New("memory size out of range")
	}
	return n * u, nil
}
