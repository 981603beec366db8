package authn

import (
	"fmt"
	"testing"
	"time"
)

func newTestLimiter(o LimiterOptions) (*FailureLimiter, func(time.Duration)) {
	now := time.Unix(1000, 0)
	l := NewFailureLimiter(o)
	l.now = func() time.Time { return now }
	return l, func(d time.Duration) { now = now.Add(d) }
}

func TestFailureLimiter(t *testing.T) {
	l, step := newTestLimiter(LimiterOptions{Max: 3, Window: time.Minute})
	for i := range 3 {
		if wait := l.Fail("ext", "192.0.2.1"); wait != 0 {
			t.Fatalf("failure %d refused (%v), want counted", i+1, wait)
		}
		step(10 * time.Second)
	}
	// Failures at 0s, 10s, 20s; now 30s: the first frees a slot at 60s.
	if got := l.Blocked("ext", "192.0.2.1"); got != 30*time.Second {
		t.Errorf("Blocked = %v, want 30s", got)
	}
	if got := l.Fail("ext", "192.0.2.1"); got != 30*time.Second {
		t.Errorf("a failure while blocked: wait %v, want 30s", got)
	}
	// Another listener, another address: not blocked.
	if l.Blocked("local", "192.0.2.1") != 0 || l.Blocked("ext", "192.0.2.2") != 0 {
		t.Error("the block spilled over to another listener or address")
	}
	step(30 * time.Second)
	if got := l.Blocked("ext", "192.0.2.1"); got != 0 {
		t.Errorf("Blocked after the window = %v", got)
	}
	step(2 * time.Minute)
	if l.Blocked("ext", "192.0.2.1") != 0 || len(l.entries) != 0 {
		t.Errorf("expired entries kept: %v", l.entries)
	}
	var nl *FailureLimiter
	if nl.Fail("ext", "a") != 0 || nl.Blocked("ext", "a") != 0 || nl.Prefix("a") != "a" {
		t.Error("nil limiter limits")
	}
}

// Addresses of one prefix share a counter: IPv6 by /64, IPv4 by the
// configured prefix (each address alone by default).
func TestFailureLimiterPrefixes(t *testing.T) {
	for _, tc := range []struct {
		v4        int
		a, b      string
		sameCount bool
	}{
		{0, "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{0, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{0, "192.0.2.1", "192.0.2.2", false},
		{24, "192.0.2.1", "192.0.2.200", true},
		{24, "192.0.2.1", "192.0.3.1", false},
		{24, "::ffff:192.0.2.1", "192.0.2.9", true},
	} {
		t.Run(fmt.Sprintf("%d %s %s", tc.v4, tc.a, tc.b), func(t *testing.T) {
			l, _ := newTestLimiter(LimiterOptions{Max: 2, Window: time.Minute, IPv4Prefix: tc.v4})
			l.Fail("ext", tc.a)
			l.Fail("ext", tc.a)
			if got := l.Blocked("ext", tc.b) > 0; got != tc.sameCount {
				t.Errorf("%s blocked after %s's failures: %v, want %v (prefixes %s, %s)", tc.b, tc.a, got, tc.sameCount, l.Prefix(tc.a), l.Prefix(tc.b))
			}
		})
	}
}

// A full table never forgets a live counter: new prefixes share the
// overflow counter, so flooding blocks the flood, not its victims' record.
func TestFailureLimiterBounded(t *testing.T) {
	l, step := newTestLimiter(LimiterOptions{Max: 2, Window: time.Hour, MaxEntries: 100})
	l.Fail("ext", "198.51.100.7")
	l.Fail("ext", "198.51.100.7") // the victim's attacker, blocked
	for i := range 1000 {
		step(time.Millisecond)
		l.Fail("ext", fmt.Sprintf("10.%d.%d.1", i/250, i%250))
	}
	if n := len(l.entries); n > 101 {
		t.Fatalf("%d counters, cap is 100 (+ overflow)", n)
	}
	if l.Blocked("ext", "198.51.100.7") == 0 {
		t.Error("the flood reset a blocked address's counter")
	}
	if l.Blocked("ext", "203.0.113.5") == 0 {
		t.Error("a new address after the flood is not in the (blocked) overflow counter")
	}
	// Other listeners' overflow is their own.
	if l.Blocked("local", "203.0.113.5") != 0 {
		t.Error("overflow blocked another listener")
	}
	// Once the window passes, expired counters make room again.
	step(2 * time.Hour)
	if l.Blocked("ext", "203.0.113.5") != 0 {
		t.Error("blocked after every failure expired")
	}
	st := l.Stats()
	if len(st) != 1 || st[0].Listener != "ext" || st[0].Failures != 1002 || st[0].Entries != 0 {
		t.Errorf("stats %+v", st)
	}
}
