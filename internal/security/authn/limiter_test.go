package authn

import (
	"strconv"
	"testing"
	"time"
)

func TestFailureLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewFailureLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	step := func(d time.Duration) { now = now.Add(d) }

	for i := range 3 {
		if l.Blocked("a") != 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		if blocked := l.Fail("a"); blocked != (i == 2) {
			t.Fatalf("Fail %d reported blocked=%v", i+1, blocked)
		}
		step(10 * time.Second)
	}
	// Failures at 0s, 10s, 20s; now 30s: the first frees a slot at 60s.
	if got := l.Blocked("a"); got != 30*time.Second {
		t.Errorf("Blocked = %v, want 30s", got)
	}
	if l.Blocked("b") != 0 {
		t.Error("other address blocked")
	}
	step(30 * time.Second)
	if got := l.Blocked("a"); got != 0 {
		t.Errorf("Blocked after the window = %v", got)
	}
	l.Fail("a") // 60s: failures at 10, 20, 60 -> blocked until 70s
	if got := l.Blocked("a"); got != 10*time.Second {
		t.Errorf("Blocked = %v, want 10s", got)
	}
	step(2 * time.Minute)
	if l.Blocked("a") != 0 || len(l.addrs) != 0 {
		t.Errorf("expired entries kept: %v", l.addrs)
	}

	// A nil limiter limits nothing.
	var nl *FailureLimiter
	if nl.Fail("a") || nl.Blocked("a") != 0 {
		t.Error("nil limiter limits")
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewFailureLimiter(2, time.Hour)
	l.now = func() time.Time { return now }
	for i := range maxLimitedAddresses + 500 {
		now = now.Add(time.Millisecond)
		l.Fail("10.0." + strconv.Itoa(i))
		l.Fail("10.0." + strconv.Itoa(i))
	}
	if n := len(l.addrs); n > maxLimitedAddresses {
		t.Fatalf("%d addresses tracked, cap is %d", n, maxLimitedAddresses)
	}
	// The newest offender is still blocked; the oldest was evicted.
	if l.Blocked("10.0."+strconv.Itoa(maxLimitedAddresses+499)) == 0 {
		t.Error("newest offender not blocked")
	}
	if l.Blocked("10.0.0") != 0 {
		t.Error("oldest offender not evicted")
	}
}
