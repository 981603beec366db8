package authn

import (
	"net/netip"
	"sort"
	"sync"
	"time"
)

// DefaultMaxLimiterEntries bounds the limiter's memory.
const DefaultMaxLimiterEntries = 10000

// overflowKey is the bucket that prefixes share once the table is full.
const overflowKey = "overflow"

// LimiterOptions configure a FailureLimiter.
type LimiterOptions struct {
	// Max failures within Window block a client (its address prefix on
	// one listener).
	Max    int
	Window time.Duration
	// IPv4Prefix and IPv6Prefix group client addresses: every address of
	// one prefix shares a counter, so an attacker cannot step around the
	// limit by using the neighbouring addresses every host of a network
	// gets. Defaults 32 (each IPv4 address alone) and 64 (one IPv6
	// subnet, the smallest a site is given).
	IPv4Prefix, IPv6Prefix int
	// MaxEntries bounds the number of counters; default
	// DefaultMaxLimiterEntries.
	MaxEntries int
}

// FailureLimiter limits failed authentications per listener and client
// address prefix, to slow down credential guessing and keep a
// misconfigured client from filling the logs.
//
// It only ever refuses failures: Filter asks it after a credential was
// rejected, so a request with a valid credential is never refused, and a
// blocked client that finds its valid token again gets in at once. After
// Max failures within Window, further failures from the same prefix on the
// same listener get 429 instead of 401 until the oldest of those failures
// leaves the window. Other listeners count separately: failures on one
// never block another.
//
// Memory is bounded without letting an attacker reset a victim's counter:
// a counter is only forgotten once its failures have all left the window,
// and when the table is full, new prefixes share one overflow counter per
// listener, so a flood of addresses blocks the flood, not its victims.
type FailureLimiter struct {
	o   LimiterOptions
	now func() time.Time // tests move time

	mu      sync.Mutex
	entries map[limiterKey][]time.Time // failures within the window, oldest first
	stats   map[string]*listenerStats
	swept   time.Time // last sweep of a full table for expired counters
}

type limiterKey struct{ listener, prefix string }

type listenerStats struct {
	failures, limited uint64
}

// NewFailureLimiter returns a limiter with o's settings.
func NewFailureLimiter(o LimiterOptions) *FailureLimiter {
	o.Max = max(o.Max, 1)
	if o.IPv4Prefix <= 0 || o.IPv4Prefix > 32 {
		o.IPv4Prefix = 32
	}
	if o.IPv6Prefix <= 0 || o.IPv6Prefix > 128 {
		o.IPv6Prefix = 64
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxLimiterEntries
	}
	return &FailureLimiter{o: o, now: time.Now, entries: map[limiterKey][]time.Time{}, stats: map[string]*listenerStats{}}
}

// Prefix returns the counter an address belongs to: the address masked to
// the IPv4 or IPv6 prefix, or the string itself if it is no IP address.
func (l *FailureLimiter) Prefix(addr string) string {
	a, err := netip.ParseAddr(addr)
	if l == nil || err != nil {
		return addr
	}
	a = a.Unmap().WithZone("")
	bits := l.o.IPv6Prefix
	if a.Is4() {
		bits = l.o.IPv4Prefix
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return addr
	}
	return p.String()
}

// Blocked returns how long failures from addr on listener are refused, or
// 0 when they are not.
func (l *FailureLimiter) Blocked(listener, addr string) time.Duration {
	if l == nil {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blocked(l.key(listener, addr, now), now)
}

// Fail records a failed authentication from addr on listener. It returns
// how long addr is refused: 0 when this failure is still answered 401,
// else the wait for a Retry-After (the failure was refused, not counted).
func (l *FailureLimiter) Fail(listener, addr string) time.Duration {
	if l == nil {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats[listener]
	if st == nil {
		st = &listenerStats{}
		l.stats[listener] = st
	}
	st.failures++
	k := l.key(listener, addr, now)
	if wait := l.blocked(k, now); wait > 0 {
		st.limited++
		return wait
	}
	fs := append(l.entries[k], now)
	if len(fs) > l.o.Max {
		// Older failures cannot matter any more: a block lasts until the
		// Max-th newest failure leaves the window.
		fs = append(fs[:0], fs[len(fs)-l.o.Max:]...)
	}
	l.entries[k] = fs
	return 0
}

// key returns the counter of addr on listener: its own, or the listener's
// overflow counter when the table is full. l.mu is held.
func (l *FailureLimiter) key(listener, addr string, now time.Time) limiterKey {
	k := limiterKey{listener, l.Prefix(addr)}
	if l.prune(k, now) != nil {
		return k
	}
	if len(l.entries) >= l.o.MaxEntries {
		// Forget only counters whose failures all expired: dropping a live
		// counter would let an attacker reset a victim's (or its own) by
		// flooding the table. A full table is swept at most once a second,
		// so a flood does not cost a sweep per request.
		if now.Sub(l.swept) >= time.Second {
			l.swept = now
			for other := range l.entries {
				l.prune(other, now)
			}
		}
		if len(l.entries) >= l.o.MaxEntries {
			return limiterKey{listener, overflowKey}
		}
	}
	return k
}

// blocked returns how long k is blocked. l.mu is held.
func (l *FailureLimiter) blocked(k limiterKey, now time.Time) time.Duration {
	fs := l.prune(k, now)
	if len(fs) < l.o.Max {
		return 0
	}
	return fs[len(fs)-l.o.Max].Add(l.o.Window).Sub(now)
}

// prune drops failures older than the window; l.mu is held.
func (l *FailureLimiter) prune(k limiterKey, now time.Time) []time.Time {
	fs, ok := l.entries[k]
	if !ok {
		return nil
	}
	i := 0
	for i < len(fs) && !now.Before(fs[i].Add(l.o.Window)) {
		i++
	}
	if i == len(fs) {
		delete(l.entries, k)
		return nil
	}
	fs = fs[i:]
	l.entries[k] = fs
	return fs
}

// LimiterStats is the state of the limiter on one listener, for metrics.
type LimiterStats struct {
	Listener string
	// Entries are the counters held (address prefixes with failures in
	// the window, and the overflow counter when in use).
	Entries int
	// Blocked are the counters over the limit now.
	Blocked int
	// Failures counts failed authentications; Limited those of them
	// refused with 429.
	Failures, Limited uint64
}

// Stats returns the state of each listener that had failures, by name.
func (l *FailureLimiter) Stats() []LimiterStats {
	if l == nil {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	by := map[string]*LimiterStats{}
	get := func(name string) *LimiterStats {
		s := by[name]
		if s == nil {
			s = &LimiterStats{Listener: name}
			by[name] = s
		}
		return s
	}
	for name, st := range l.stats {
		s := get(name)
		s.Failures, s.Limited = st.failures, st.limited
	}
	for k := range l.entries {
		if l.prune(k, now) == nil {
			continue
		}
		s := get(k.listener)
		s.Entries++
		if l.blocked(k, now) > 0 {
			s.Blocked++
		}
	}
	out := make([]LimiterStats, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Listener < out[j].Listener })
	return out
}
