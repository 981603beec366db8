package internaltls

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRenewLoopDoesNotSpin: a renewal loop whose schedule says "now" (the
// old bug: a short-lived, backdated certificate was due at issue) or whose
// renewals fail is held back by the floor and the backoff: a handful of
// attempts in a window, not thousands.
func TestRenewLoopDoesNotSpin(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	leaf := &x509.Certificate{NotBefore: time.Now().Add(-5 * time.Minute), NotAfter: time.Now().Add(time.Second)}
	floor := 50 * time.Millisecond
	schedule := func(*x509.Certificate, time.Time) time.Duration { return floor }
	backoff := func(n int) time.Duration { return floor << min(n-1, 4) }
	for _, tc := range []struct {
		name string
		err  error
		max  int64
	}{
		{"renewals succeed", nil, 12},                              // ~500ms / 50ms floor
		{"renewals fail", errors.New("jobmanager unreachable"), 6}, // 50+100+200+400ms backoff
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			var wg sync.WaitGroup
			wg.Go(func() {
				renewLoopWith(ctx, log, "test", func() *x509.Certificate { return leaf },
					func(context.Context) error { n.Add(1); return tc.err }, time.Now, schedule, backoff)
			})
			wg.Wait()
			if got := n.Load(); got == 0 || got > tc.max {
				t.Errorf("%d renewals in 500ms, want 1..%d", got, tc.max)
			}
		})
	}
}
