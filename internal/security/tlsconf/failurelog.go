package tlsconf

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// failureSummaryEvery is how often repeats of one failure are summarised.
const failureSummaryEvery = time.Minute

// maxFailureKeys bounds the memory a flood of distinct peers can take.
const maxFailureKeys = 4096

// FailureLog logs failed handshakes without flooding: the first failure of
// a (peer host, reason) pair is logged with the peer address; repeats are
// counted and summarised at most once a minute. It is safe for concurrent
// use.
type FailureLog struct {
	// Classify turns an error into the logged reason; nil means the
	// package Classify. Set it to a Store's Classify for its keys.
	Classify func(error) string

	log  *slog.Logger
	what string
	now  func() time.Time

	mu      sync.Mutex
	entries map[failureKey]*failureEntry
}

type failureKey struct{ host, reason string }

type failureEntry struct {
	repeats    int // since the last line
	lastLogged time.Time
}

// NewFailureLog returns a FailureLog whose lines name what (e.g. "rpc
// server", "data client").
func NewFailureLog(log *slog.Logger, what string) *FailureLog {
	if log == nil {
		log = slog.Default()
	}
	return &FailureLog{log: log, what: what, now: time.Now, entries: map[failureKey]*failureEntry{}}
}

// Record notes a failed handshake with peer.
func (f *FailureLog) Record(peer net.Addr, err error) {
	if err == nil {
		return
	}
	classify := f.Classify
	if classify == nil {
		classify = Classify
	}
	reason, addr, host := classify(err), "", ""
	if peer != nil {
		addr = peer.String()
		host = addr
		if h, _, serr := net.SplitHostPort(addr); serr == nil {
			host = h
		}
	}
	k := failureKey{host, reason}
	now := f.now()

	f.mu.Lock()
	e, seen := f.entries[k]
	var (
		repeats int
		since   time.Time
	)
	switch {
	case !seen:
		if len(f.entries) >= maxFailureKeys {
			f.evictLocked(now)
		}
		f.entries[k] = &failureEntry{lastLogged: now}
	case now.Sub(e.lastLogged) >= failureSummaryEvery:
		repeats, since = e.repeats+1, e.lastLogged
		e.repeats, e.lastLogged = 0, now
	default:
		e.repeats++
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()

	if !seen {
		f.log.Warn("TLS handshake failed", "what", f.what, "peer", addr, "reason", reason)
		return
	}
	f.log.Warn("TLS handshake failures repeated", "what", f.what, "peer", host, "reason", reason,
		"count", repeats, "since", since.Format(time.RFC3339))
}

// evictLocked drops entries idle for a summary period, or all of them if
// none is: losing counts beats unbounded memory.
func (f *FailureLog) evictLocked(now time.Time) {
	for k, e := range f.entries {
		if now.Sub(e.lastLogged) >= failureSummaryEvery && e.repeats == 0 {
			delete(f.entries, k)
		}
	}
	if len(f.entries) >= maxFailureKeys {
		clear(f.entries)
	}
}
