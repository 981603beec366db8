package jobmanager

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// Restart strategies (restart-strategy.type), with Flink's names.
const (
	RestartNone             = "none"
	RestartFixedDelay       = "fixed-delay"
	RestartExponentialDelay = "exponential-delay"
)

// RestartSettings are a job's restart strategy, read once at submit by
// RestartSettingsFromConfig.
type RestartSettings struct {
	Strategy string // RestartNone, RestartFixedDelay or RestartExponentialDelay
	// Default: restart-strategy.type was not set and the strategy follows
	// from checkpointing (Flink's rule), for the log.
	Default bool

	FixedAttempts int           // restart-strategy.fixed-delay.attempts
	FixedDelay    time.Duration // restart-strategy.fixed-delay.delay

	Exponential ExponentialDelay
}

// ExponentialDelay are the restart-strategy.exponential-delay.* keys.
type ExponentialDelay struct {
	InitialBackoff      time.Duration // initial-backoff
	MaxBackoff          time.Duration // max-backoff
	Multiplier          float64       // backoff-multiplier
	ResetThreshold      time.Duration // reset-backoff-threshold
	Jitter              float64       // jitter-factor
	AttemptsBeforeReset int           // attempts-before-reset-backoff
}

// RestartSettingsFromConfig reads a job's restart strategy from its
// effective configuration. Without restart-strategy.type, a job that takes
// checkpoints restarts with exponential-delay and any other does not
// restart, as in Flink.
func RestartSettingsFromConfig(cfg *config.Config, checkpointing bool) (RestartSettings, error) {
	s := RestartSettings{
		FixedAttempts: cfg.Int("restart-strategy.fixed-delay.attempts"),
		FixedDelay:    cfg.Duration("restart-strategy.fixed-delay.delay"),
		Exponential: ExponentialDelay{
			InitialBackoff:      cfg.Duration("restart-strategy.exponential-delay.initial-backoff"),
			MaxBackoff:          cfg.Duration("restart-strategy.exponential-delay.max-backoff"),
			Multiplier:          cfg.Float("restart-strategy.exponential-delay.backoff-multiplier"),
			ResetThreshold:      cfg.Duration("restart-strategy.exponential-delay.reset-backoff-threshold"),
			Jitter:              cfg.Float("restart-strategy.exponential-delay.jitter-factor"),
			AttemptsBeforeReset: cfg.Int("restart-strategy.exponential-delay.attempts-before-reset-backoff"),
		},
	}
	switch t := strings.ToLower(cfg.String("restart-strategy.type")); {
	case !cfg.IsSet("restart-strategy.type"):
		s.Strategy, s.Default = RestartNone, true
		if checkpointing {
			s.Strategy = RestartExponentialDelay
		}
	case t == "fixed-delay" || t == "fixeddelay":
		s.Strategy = RestartFixedDelay
	case t == "exponential-delay" || t == "exponentialdelay":
		s.Strategy = RestartExponentialDelay
	default:
		s.Strategy = RestartNone
	}
	if s.Strategy == RestartExponentialDelay && s.Exponential.MaxBackoff < s.Exponential.InitialBackoff {
		return s, fmt.Errorf("restart-strategy.exponential-delay.max-backoff (%s) is below restart-strategy.exponential-delay.initial-backoff (%s): raise the maximum or lower the initial backoff",
			config.FormatDuration(s.Exponential.MaxBackoff), config.FormatDuration(s.Exponential.InitialBackoff))
	}
	return s, nil
}

// restartBackoff decides, at each failure of a job, whether it restarts and
// after how long. It belongs to one job and is used under the
// JobManager's lock.
type restartBackoff struct {
	set RestartSettings
	// random returns a number in [0, 1): the jitter's draw. Tests replace it.
	random func() float64
	// attempts are the restarts counted against the limit: every restart
	// for fixed-delay, those since the last reset for exponential-delay.
	attempts int
}

func newRestartBackoff(set RestartSettings) *restartBackoff {
	return &restartBackoff{set: set, random: rand.Float64}
}

// next is called when an attempt failed after running for ran (0 when it
// never reached RUNNING). It returns the delay before the next attempt, or
// false when the job must fail.
func (b *restartBackoff) next(ran time.Duration) (time.Duration, bool) {
	switch b.set.Strategy {
	case RestartFixedDelay:
		if b.attempts >= b.set.FixedAttempts {
			return 0, false
		}
		b.attempts++
		return b.set.FixedDelay, true
	case RestartExponentialDelay:
		e := b.set.Exponential
		// A job that ran longer than the threshold was healthy: its failure
		// starts a new series, from the initial backoff.
		if ran > e.ResetThreshold {
			b.attempts = 0
		}
		if b.attempts >= e.AttemptsBeforeReset {
			return 0, false
		}
		b.attempts++
		return e.delay(b.attempts, b.random()), true
	}
	return 0, false
}

// delay is the wait before restart n of a series (n >= 1):
// min(initial × multiplier^(n-1), max), moved by up to ±jitter of itself;
// r in [0, 1) draws where.
func (e ExponentialDelay) delay(n int, r float64) time.Duration {
	d := float64(e.InitialBackoff) * math.Pow(e.Multiplier, float64(n-1))
	if d > float64(e.MaxBackoff) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(e.MaxBackoff)
	}
	d += d * e.Jitter * (2*r - 1)
	if d < 0 {
		d = 0
	}
	return time.Duration(d)
}
