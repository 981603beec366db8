package jobmanager

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

func restartSettings(t *testing.T, settings map[string]string, checkpointing bool) RestartSettings {
	t.Helper()
	cfg, err := config.New().WithJobSettings(settings)
	if err != nil {
		t.Fatal(err)
	}
	s, err := RestartSettingsFromConfig(cfg, checkpointing)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixedRandom returns the draws in order, then the last one again.
func fixedRandom(draws ...float64) func() float64 {
	return func() float64 {
		r := draws[0]
		if len(draws) > 1 {
			draws = draws[1:]
		}
		return r
	}
}

// TestExponentialDelaySequence: delay = min(initial × multiplier^(n-1), max), then jitter.
func TestExponentialDelaySequence(t *testing.T) {
	set := restartSettings(t, map[string]string{
		"restart-strategy.type":                                 "exponential-delay",
		"restart-strategy.exponential-delay.initial-backoff":    "1 s",
		"restart-strategy.exponential-delay.max-backoff":        "10 s",
		"restart-strategy.exponential-delay.backoff-multiplier": "2",
		"restart-strategy.exponential-delay.jitter-factor":      "0",
	}, false)
	b := newRestartBackoff(set)
	b.random = fixedRandom(0.5)
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		d, ok := b.next(0)
		if !ok || d != w {
			t.Fatalf("restart %d: %v %v, want %v", i+1, d, ok, w)
		}
	}

	// Flink's defaults: 1 s, ×1.5, at most 1 min.
	set = restartSettings(t, map[string]string{"restart-strategy.type": "exponentialdelay", "restart-strategy.exponential-delay.jitter-factor": "0"}, false)
	b = newRestartBackoff(set)
	var got []string
	for range 12 {
		d, _ := b.next(0)
		got = append(got, d.String())
	}
	if s := strings.Join(got, " "); s != "1s 1.5s 2.25s 3.375s 5.0625s 7.59375s 11.390625s 17.0859375s 25.62890625s 38.443359375s 57.665039062s 1m0s" {
		t.Errorf("default sequence: %s", s)
	}
}

// TestExponentialDelayJitter: the delay moves by at most ±jitter-factor of itself, and where
// depends only on the draw.
func TestExponentialDelayJitter(t *testing.T) {
	e := ExponentialDelay{InitialBackoff: 4 * time.Second, MaxBackoff: time.Minute, Multiplier: 2, Jitter: 0.25}
	for r, want := range map[float64]time.Duration{0: 3 * time.Second, 0.5: 4 * time.Second, 0.75: 4500 * time.Millisecond} {
		if d := e.delay(1, r); d != want {
			t.Errorf("draw %v: %v, want %v", r, d, want)
		}
	}
	// Jitter applies after the cap: a capped delay may exceed the cap by the jitter.
	if d := e.delay(10, 0.999999); d < 74*time.Second || d > 75*time.Second {
		t.Errorf("capped delay with the largest jitter: %v, want about 75 s", d)
	}
	// A large multiplier does not overflow.
	e.Multiplier = 1e300
	if d := e.delay(50, 0.5); d != time.Minute {
		t.Errorf("huge multiplier: %v, want the maximum", d)
	}
}

// TestExponentialDelayResetAndLimit: attempts-before-reset-backoff restarts in a row, then the
// job fails; a failure after running longer than reset-backoff-threshold starts afresh.
func TestExponentialDelayResetAndLimit(t *testing.T) {
	set := restartSettings(t, map[string]string{
		"restart-strategy.type":                                            "exponential-delay",
		"restart-strategy.exponential-delay.initial-backoff":               "100 ms",
		"restart-strategy.exponential-delay.backoff-multiplier":            "3",
		"restart-strategy.exponential-delay.jitter-factor":                 "0",
		"restart-strategy.exponential-delay.reset-backoff-threshold":       "1 min",
		"restart-strategy.exponential-delay.attempts-before-reset-backoff": "3",
	}, false)
	b := newRestartBackoff(set)
	for i, w := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond} {
		// Ran a while, but not past the threshold: no reset.
		if d, ok := b.next(time.Minute); !ok || d != w {
			t.Fatalf("restart %d: %v %v, want %v", i+1, d, ok, w)
		}
	}
	if d, ok := b.next(30 * time.Second); ok {
		t.Fatalf("a 4th restart without a reset was allowed (after %v); attempts-before-reset-backoff is 3", d)
	}
	// The job ran past the threshold: the backoff and the count start again.
	for i, w := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond} {
		ran := time.Duration(0)
		if i == 0 {
			ran = time.Minute + time.Millisecond
		}
		if d, ok := b.next(ran); !ok || d != w {
			t.Fatalf("after a reset, restart %d: %v %v, want %v", i+1, d, ok, w)
		}
	}
}

func TestFixedDelayRestarts(t *testing.T) {
	b := newRestartBackoff(restartSettings(t, map[string]string{
		"restart-strategy.type": "fixeddelay", "restart-strategy.fixed-delay.attempts": "2", "restart-strategy.fixed-delay.delay": "3 s",
	}, true))
	for i := range 2 {
		// Running long does not reset fixed-delay's count, as before.
		if d, ok := b.next(24 * time.Hour); !ok || d != 3*time.Second {
			t.Fatalf("restart %d: %v %v", i+1, d, ok)
		}
	}
	if _, ok := b.next(24 * time.Hour); ok {
		t.Fatal("a third fixed-delay restart was allowed")
	}
}

// TestDefaultRestartStrategy is Flink's rule: without restart-strategy.type, a job with
// checkpointing restarts with exponential-delay and a job without does not restart; a type set
// by the cluster or the job wins.
func TestDefaultRestartStrategy(t *testing.T) {
	for _, tc := range []struct {
		settings      map[string]string
		checkpointing bool
		want          string
		isDefault     bool
	}{
		{nil, false, RestartNone, true},
		{nil, true, RestartExponentialDelay, true},
		{map[string]string{"restart-strategy.type": "none"}, true, RestartNone, false},
		{map[string]string{"restart-strategy.type": "fixed-delay"}, true, RestartFixedDelay, false},
		{map[string]string{"restart-strategy.type": "EXPONENTIAL-DELAY"}, false, RestartExponentialDelay, false},
		{map[string]string{"restart-strategy": "exponentialdelay"}, false, RestartExponentialDelay, false},
	} {
		s := restartSettings(t, tc.settings, tc.checkpointing)
		if s.Strategy != tc.want || s.Default != tc.isDefault {
			t.Errorf("%v, checkpointing %v: %s (default %v), want %s (default %v)", tc.settings, tc.checkpointing, s.Strategy, s.Default, tc.want, tc.isDefault)
		}
	}
	if _, ok := newRestartBackoff(restartSettings(t, nil, false)).next(0); ok {
		t.Error("strategy none restarted")
	}
}

func TestRestartSettingsRefuseMaxBelowInitial(t *testing.T) {
	cfg, err := config.New().WithJobSettings(map[string]string{
		"restart-strategy.type": "exponential-delay", "restart-strategy.exponential-delay.initial-backoff": "10 s",
		"restart-strategy.exponential-delay.max-backoff": "5 s",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = RestartSettingsFromConfig(cfg, false)
	if err == nil || !strings.Contains(err.Error(), "restart-strategy.exponential-delay.max-backoff (5 s) is below restart-strategy.exponential-delay.initial-backoff (10 s)") {
		t.Fatalf("max below initial: %v", err)
	}
	// Without exponential-delay the keys do not matter.
	cfg, _ = config.New().WithJobSettings(map[string]string{"restart-strategy.exponential-delay.max-backoff": "1 ms"})
	if _, err := RestartSettingsFromConfig(cfg, false); err != nil {
		t.Errorf("max-backoff below initial without exponential-delay: %v", err)
	}
}
