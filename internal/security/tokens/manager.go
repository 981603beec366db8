package tokens

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/internal/restapi"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// Expiry actions (security.delegation.token.provider.<service>.expiry-action).
const (
	ActionFail     = "fail"
	ActionContinue = "continue"
)

// Settings are the manager's keys.
type Settings struct {
	Enabled      bool              // security.delegation.tokens.enabled
	RetryBackoff time.Duration     // security.delegation.tokens.renewal.retry.backoff
	TimeRatio    float64           // security.delegation.tokens.renewal.time-ratio
	ExpiryMargin time.Duration     // security.delegation.tokens.expiry-margin
	ExpiryAction map[string]string // by service: fail or continue
	// ProviderEnabled says, by service, whether security.delegation.token.provider.<service>.enabled.
	ProviderEnabled map[string]bool
}

// SettingsFrom reads the manager's keys from cfg.
func SettingsFrom(cfg *config.Config) Settings {
	s := Settings{
		Enabled:         cfg.Bool("security.delegation.tokens.enabled"),
		RetryBackoff:    cfg.Duration("security.delegation.tokens.renewal.retry.backoff"),
		TimeRatio:       cfg.Float("security.delegation.tokens.renewal.time-ratio"),
		ExpiryMargin:    cfg.Duration("security.delegation.tokens.expiry-margin"),
		ExpiryAction:    map[string]string{},
		ProviderEnabled: map[string]bool{},
	}
	for _, svc := range config.DelegationTokenServices {
		s.ExpiryAction[svc] = cfg.String("security.delegation.token.provider." + svc + ".expiry-action")
		s.ProviderEnabled[svc] = cfg.Bool("security.delegation.token.provider." + svc + ".enabled")
	}
	return s
}

// Manager obtains, renews and releases the delegation tokens of the JobManager's jobs. Its
// owner runs Run; OnChange and OnExpiring are set before.
type Manager struct {
	set       Settings
	providers map[string]Provider
	log       *slog.Logger
	now       func() time.Time

	// OnChange is called (without the manager's lock) with a job's new set after a renewal:
	// the JobManager pushes it to the TaskManagers running the job.
	OnChange func(Set)
	// OnExpiring is called once per job and service when the service's tokens are within
	// the expiry margin of their expiry and were not renewed, with the reason to show; fail
	// says whether the job must fail (expiry-action fail).
	OnExpiring func(job, service, reason string, fail bool)

	mu   sync.Mutex
	jobs map[string]*jobTokens
	wake chan struct{}
}

type jobTokens struct {
	job      Job
	version  int64
	services map[string]*entry
	// actions overrides Settings.ExpiryAction for this job (its own configuration).
	actions map[string]string
}

// entry is one service's tokens of one job.
type entry struct {
	service  string
	uses     []map[string]string
	tokens   []credentials.Token
	obtained time.Time
	expires  time.Time
	next     time.Time // when to obtain again
	failures int
	lastErr  string
	expiring bool // OnExpiring was called for these tokens
	// shipped: the client obtained the tokens and sent them with the job (sluice run
	// --kerberos); nothing on the cluster can renew them.
	shipped bool
	busy    bool // an Obtain is running
}

// NewManager returns a manager over providers (those of disabled services are dropped).
func NewManager(set Settings, providers []Provider, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{set: set, providers: map[string]Provider{}, log: log, now: time.Now, jobs: map[string]*jobTokens{}, wake: make(chan struct{}, 1)}
	for _, p := range providers {
		if p == nil {
			continue
		}
		if on, ok := set.ProviderEnabled[p.Service()]; ok && !on {
			continue
		}
		m.providers[p.Service()] = p
	}
	return m
}

// Enabled reports whether the manager obtains tokens at all (security.delegation.tokens.enabled).
func (m *Manager) Enabled() bool { return m != nil && m.set.Enabled }

// Provides reports whether the manager has an enabled provider for service.
func (m *Manager) Provides(service string) bool {
	if !m.Enabled() {
		return false
	}
	_, ok := m.providers[service]
	return ok
}

// Start obtains the tokens of a new job: for each service in uses that has a provider, and
// the tokens the client shipped with the job. An error names the service and what to fix;
// the job must then be refused. A job needing nothing gets an empty set.
func (m *Manager) Start(ctx context.Context, job Job, uses map[string][]map[string]string, shipped []credentials.Token) (Set, error) {
	if !m.Enabled() {
		if len(shipped) > 0 {
			return Set{}, errors.New("the job carries delegation tokens but security.delegation.tokens.enabled is false on the JobManager: set it to true, or submit without --kerberos")
		}
		return Set{Job: job.ID}, nil
	}
	jt := &jobTokens{job: job, services: map[string]*entry{}, actions: job.ExpiryActions}
	now := m.now()
	bySvc := map[string][]credentials.Token{}
	for _, t := range shipped {
		if t.Service == "" || t.Secret == "" || t.Expires.IsZero() {
			return Set{}, errors.New("a shipped delegation token lacks its service, secret or expiry")
		}
		if !t.Expires.After(now) {
			return Set{}, fmt.Errorf("the %s delegation token shipped with the job expired at %s: obtain a new one (sluice run --kerberos again)", t.Service, t.Expires.UTC().Format(time.RFC3339))
		}
		bySvc[t.Service] = append(bySvc[t.Service], t)
	}
	for svc, ts := range bySvc {
		e := &entry{service: svc, tokens: ts, obtained: now, shipped: true}
		e.expires = earliest(ts)
		jt.services[svc] = e
	}
	for _, svc := range slices.Sorted(maps.Keys(uses)) {
		if _, ok := jt.services[svc]; ok {
			continue // the client's tokens serve this service
		}
		p, ok := m.providers[svc]
		if !ok {
			continue
		}
		j := job
		j.Uses = uses[svc]
		ts, exp, err := obtain(ctx, p, j, nil)
		if errors.Is(err, ErrNotNeeded) {
			continue
		}
		if err != nil {
			m.release(context.WithoutCancel(ctx), jt)
			return Set{}, fmt.Errorf("obtain the %s delegation token for job %s: %w (the %s provider runs on the JobManager: fix its credential, or turn it off with security.delegation.token.provider.%s.enabled: false and give the connector its own)", svc, job.ID, err, svc, svc)
		}
		e := &entry{service: svc, uses: uses[svc], tokens: ts, obtained: now, expires: exp}
		e.next = m.renewAt(e)
		jt.services[svc] = e
		m.log.Info("delegation token obtained", "job", job.ID, "service", svc, "expires", exp.UTC().Format(time.RFC3339), "renew-at", e.next.UTC().Format(time.RFC3339))
	}
	for svc, e := range jt.services {
		if e.shipped {
			m.log.Info("delegation token shipped with the job; it is not renewed", "job", job.ID, "service", svc, "expires", e.expires.UTC().Format(time.RFC3339))
		}
	}
	jt.version = 1
	m.mu.Lock()
	m.jobs[job.ID] = jt
	s := jt.setLocked()
	m.mu.Unlock()
	m.poke()
	return s, nil
}

func obtain(ctx context.Context, p Provider, j Job, prev []credentials.Token) ([]credentials.Token, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ts, exp, err := p.Obtain(ctx, j, prev)
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(ts) == 0 {
		return nil, time.Time{}, errors.New("the provider returned no token")
	}
	for i := range ts {
		ts[i].Service = p.Service()
		if ts[i].Expires.IsZero() {
			ts[i].Expires = exp
		}
	}
	if exp.IsZero() {
		exp = earliest(ts)
	}
	if !exp.After(time.Now()) {
		return nil, time.Time{}, fmt.Errorf("the provider returned a token that expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return ts, exp, nil
}

func earliest(ts []credentials.Token) time.Time {
	return Set{Tokens: ts}.Earliest()
}

// margin is how long before its tokens expire a job is failed: the configured expiry margin,
// but at most half the time between the planned renewal and the expiry, so that a short-lived
// token is renewed (and retried) before the job is told.
func (m *Manager) margin(e *entry) time.Duration {
	window := time.Duration(float64(e.expires.Sub(e.obtained)) * (1 - m.set.TimeRatio) / 2)
	return min(m.set.ExpiryMargin, max(window, 0))
}

func (m *Manager) renewAt(e *entry) time.Time {
	life := e.expires.Sub(e.obtained)
	return e.obtained.Add(time.Duration(float64(life) * m.set.TimeRatio))
}

// retryIn is the wait after a failed attempt: the configured backoff, but short enough that
// a retry happens before the tokens are within the expiry margin.
func (m *Manager) retryIn(e *entry, now time.Time) time.Duration {
	d := m.set.RetryBackoff
	if left := e.expires.Sub(now) - m.margin(e); left/2 < d {
		d = left / 2
	}
	return max(d, time.Second)
}

func (jt *jobTokens) setLocked() Set {
	s := Set{Job: jt.job.ID, Version: jt.version}
	for _, svc := range slices.Sorted(maps.Keys(jt.services)) {
		s.Tokens = append(s.Tokens, jt.services[svc].tokens...)
	}
	return s
}

// Current returns the tokens a job holds now; ok is false for a job without tokens.
func (m *Manager) Current(jobID string) (Set, bool) {
	if m == nil {
		return Set{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	jt, ok := m.jobs[jobID]
	if !ok || len(jt.services) == 0 {
		return Set{}, false
	}
	return jt.setLocked(), true
}

// Version returns the version of a job's tokens (0: none).
func (m *Manager) Version(jobID string) int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if jt, ok := m.jobs[jobID]; ok && len(jt.services) > 0 {
		return jt.version
	}
	return 0
}

// Stop forgets a job that ended and releases its tokens where the provider can (in the
// background, owned by the caller's ctx).
func (m *Manager) Stop(ctx context.Context, jobID string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	jt, ok := m.jobs[jobID]
	delete(m.jobs, jobID)
	m.mu.Unlock()
	if ok {
		m.release(ctx, jt)
	}
}

func (m *Manager) release(ctx context.Context, jt *jobTokens) {
	for svc, e := range jt.services {
		r, ok := m.providers[svc].(Releaser)
		if !ok || e.shipped || len(e.tokens) == 0 {
			continue
		}
		j := jt.job
		j.Uses = e.uses
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := r.Release(rctx, j, e.tokens); err != nil {
			m.log.Warn("could not release delegation token; it stays valid until it expires", "job", jt.job.ID, "service", svc, "expires", e.expires.UTC().Format(time.RFC3339), "err", err)
		}
		cancel()
	}
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run renews tokens until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	if !m.Enabled() {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.wake:
		}
		m.tick(ctx)
	}
}

// tick renews what is due and reports what is about to expire.
func (m *Manager) tick(ctx context.Context) {
	now := m.now()
	type due struct {
		jt *jobTokens
		e  *entry
	}
	var work []due
	type expiring struct {
		job, svc, reason string
		fail             bool
	}
	var warn []expiring
	m.mu.Lock()
	for _, jt := range m.jobs {
		for _, e := range jt.services {
			if !e.shipped && !e.busy && !now.Before(e.next) {
				e.busy = true
				work = append(work, due{jt, e})
			}
			if !e.expiring && !now.Before(e.expires.Add(-m.margin(e))) {
				e.expiring = true
				action := m.set.ExpiryAction[e.service]
				if a, ok := jt.actions[e.service]; ok {
					action = a
				}
				warn = append(warn, expiring{jt.job.ID, e.service, m.expiryReason(e), action != ActionContinue})
			}
		}
	}
	m.mu.Unlock()
	for _, w := range warn {
		fail := w.fail
		if fail {
			m.log.Error("delegation token about to expire without renewal; the job fails", "job", w.job, "service", w.svc, "reason", w.reason)
		} else {
			m.log.Warn("delegation token about to expire without renewal; the job keeps running (expiry-action continue)", "job", w.job, "service", w.svc, "reason", w.reason)
		}
		if m.OnExpiring != nil {
			m.OnExpiring(w.job, w.svc, w.reason, fail)
		}
	}
	for _, d := range work {
		m.renew(ctx, d.jt, d.e)
	}
}

func (m *Manager) expiryReason(e *entry) string {
	exp := e.expires.UTC().Format(time.RFC3339)
	key := "security.delegation.token.provider." + e.service + ".expiry-action"
	if e.shipped {
		return fmt.Sprintf("the %s delegation token shipped with the job expires at %s and cannot be renewed on the cluster (it was obtained by the client, sluice run --kerberos): resubmit the job with fresh tokens, or give the JobManager a credential for %s so that it obtains and renews them (%s: continue keeps the job running)", e.service, exp, e.service, key)
	}
	last := e.lastErr
	if last == "" {
		last = "no renewal was attempted in time"
	}
	return fmt.Sprintf("the %s delegation token expires at %s and could not be renewed after %d attempt(s): %s (fix the %s provider's credential on the JobManager, or set %s: continue to keep such jobs running)", e.service, exp, e.failures, last, e.service, key)
}

func (m *Manager) renew(ctx context.Context, jt *jobTokens, e *entry) {
	p := m.providers[e.service]
	j := jt.job
	j.Uses = e.uses
	m.mu.Lock()
	prev := slices.Clone(e.tokens)
	m.mu.Unlock()
	ts, exp, err := obtain(ctx, p, j, prev)
	now := m.now()
	m.mu.Lock()
	e.busy = false
	if cur, ok := m.jobs[jt.job.ID]; !ok || cur != jt {
		m.mu.Unlock()
		if err == nil {
			// The job ended while its tokens were renewed: give up the new ones too.
			m.release(ctx, &jobTokens{job: jt.job, services: map[string]*entry{e.service: {service: e.service, uses: e.uses, tokens: ts}}})
		}
		return
	}
	if err != nil {
		e.failures++
		e.lastErr = err.Error()
		e.next = now.Add(m.retryIn(e, now))
		failures, next, expires := e.failures, e.next, e.expires
		m.mu.Unlock()
		m.log.Error("delegation token renewal failed; retrying", "job", jt.job.ID, "service", e.service, "err", err,
			"failures", failures, "retry-in", next.Sub(now).Round(time.Second), "expires", expires.UTC().Format(time.RFC3339))
		return
	}
	e.tokens, e.obtained, e.expires = ts, now, exp
	e.failures, e.lastErr, e.expiring = 0, "", false
	e.next = m.renewAt(e)
	next := e.next
	jt.version++
	s := jt.setLocked()
	m.mu.Unlock()
	m.log.Info("delegation token renewed", "job", jt.job.ID, "service", e.service, "version", s.Version, "expires", exp.UTC().Format(time.RFC3339), "renew-at", next.UTC().Format(time.RFC3339))
	if m.OnChange != nil {
		m.OnChange(s)
	}
}

// ServiceStatus is what /overview and the metrics say about one service's tokens.
type ServiceStatus = restapi.DelegationTokenStatus

// Status summarises the tokens held, by service.
func (m *Manager) Status() []ServiceStatus {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	by := map[string]*ServiceStatus{}
	for _, jt := range m.jobs {
		for svc, e := range jt.services {
			s, ok := by[svc]
			if !ok {
				s = &ServiceStatus{Service: svc}
				by[svc] = s
			}
			s.Jobs++
			if s.Expires.IsZero() || e.expires.Before(s.Expires) {
				s.Expires = e.expires
			}
			if e.shipped {
				s.Shipped++
			} else if s.NextRenewal.IsZero() || e.next.Before(s.NextRenewal) {
				s.NextRenewal = e.next
			}
			if e.failures > s.Failures {
				s.Failures, s.LastError = e.failures, e.lastErr
			}
		}
	}
	out := make([]ServiceStatus, 0, len(by))
	for _, svc := range slices.Sorted(maps.Keys(by)) {
		out = append(out, *by[svc])
	}
	return out
}
