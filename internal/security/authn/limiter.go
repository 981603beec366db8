package authn

import (
	"sync"
	"time"
)

// maxLimitedAddresses bounds the limiter's memory: an attacker with many
// addresses can at worst make it forget the oldest offenders, never grow.
const maxLimitedAddresses = 10000

// FailureLimiter limits failed authentications per client address, to
// slow down token guessing and to keep a misconfigured client from
// filling the log. After Max failures within Window an address is refused
// (429) for every request, valid or not, until the oldest of those
// failures leaves the window. Only invalid credentials count: a request
// without one is how every browser and Negotiate exchange starts.
type FailureLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time // tests move time

	mu    sync.Mutex
	addrs map[string][]time.Time // failures within the window, oldest first
}

// NewFailureLimiter allows maxFailures failures per address within window
// (security.rest.authentication.failures.max and .window).
func NewFailureLimiter(maxFailures int, window time.Duration) *FailureLimiter {
	return &FailureLimiter{max: max(maxFailures, 1), window: window, now: time.Now, addrs: map[string][]time.Time{}}
}

// Blocked returns how long addr must wait before it may try again, or 0.
func (l *FailureLimiter) Blocked(addr string) time.Duration {
	if l == nil {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.prune(addr, now)
	if len(fs) < l.max {
		return 0
	}
	return fs[len(fs)-l.max].Add(l.window).Sub(now)
}

// Fail records a failed authentication from addr and reports whether addr
// is now blocked.
func (l *FailureLimiter) Fail(addr string) bool {
	if l == nil {
		return false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.prune(addr, now)
	if fs == nil && len(l.addrs) >= maxLimitedAddresses {
		l.evict(now)
	}
	fs = append(fs, now)
	if len(fs) > l.max {
		// Older failures cannot matter any more: a block lasts until the
		// max-th newest failure leaves the window.
		fs = append(fs[:0], fs[len(fs)-l.max:]...)
	}
	l.addrs[addr] = fs
	return len(fs) >= l.max
}

// prune drops failures older than the window; l.mu is held.
func (l *FailureLimiter) prune(addr string, now time.Time) []time.Time {
	fs, ok := l.addrs[addr]
	if !ok {
		return nil
	}
	i := 0
	for i < len(fs) && !now.Before(fs[i].Add(l.window)) {
		i++
	}
	if i == len(fs) {
		delete(l.addrs, addr)
		return nil
	}
	fs = fs[i:]
	l.addrs[addr] = fs
	return fs
}

// evict makes room for one address: first every address whose failures
// expired, else the one whose last failure is oldest. l.mu is held.
func (l *FailureLimiter) evict(now time.Time) {
	for addr := range l.addrs {
		l.prune(addr, now)
	}
	if len(l.addrs) < maxLimitedAddresses {
		return
	}
	var oldest string
	var at time.Time
	for addr, fs := range l.addrs {
		if last := fs[len(fs)-1]; oldest == "" || last.Before(at) {
			oldest, at = addr, last
		}
	}
	delete(l.addrs, oldest)
}
