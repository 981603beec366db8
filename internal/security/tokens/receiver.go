package tokens

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// Receiver holds, in a TaskManager's memory only, the tokens the JobManager sent for the jobs
// with tasks there: one service receiver per service, each installing its tokens where that
// service's connectors ask (Credentials). Nothing here is written to disk or logged but the
// tokens' ids, services and expiries.
type Receiver struct {
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	versions map[string]int64            // job -> version installed
	services map[string]*serviceReceiver // service -> its receiver
}

// serviceReceiver holds one service's tokens by job.
type serviceReceiver struct {
	service string
	jobs    map[string][]credentials.Token
}

// NewReceiver returns a receiver for the services with a provider.
func NewReceiver(log *slog.Logger) *Receiver {
	if log == nil {
		log = slog.Default()
	}
	r := &Receiver{log: log, now: time.Now, versions: map[string]int64{}, services: map[string]*serviceReceiver{}}
	for _, svc := range config.DelegationTokenServices {
		r.services[svc] = &serviceReceiver{service: svc, jobs: map[string][]credentials.Token{}}
	}
	return r
}

// Install replaces a job's tokens with s unless a newer version is installed. It reports
// whether s was installed.
func (r *Receiver) Install(s Set) bool {
	if s.Job == "" {
		return false
	}
	r.mu.Lock()
	if v, ok := r.versions[s.Job]; ok && v >= s.Version {
		r.mu.Unlock()
		return false
	}
	by := map[string][]credentials.Token{}
	var unknown []string
	for _, t := range s.Tokens {
		if _, ok := r.services[t.Service]; !ok {
			unknown = append(unknown, t.Service)
			continue
		}
		by[t.Service] = append(by[t.Service], t)
	}
	for svc, sr := range r.services {
		if ts, ok := by[svc]; ok {
			sr.jobs[s.Job] = ts
		} else {
			delete(sr.jobs, s.Job)
		}
	}
	r.versions[s.Job] = s.Version
	r.mu.Unlock()
	if len(unknown) > 0 {
		r.log.Warn("delegation tokens for services this taskmanager has no receiver for were ignored", "job", s.Job, "services", unknown)
	}
	r.log.Info("delegation tokens received", "job", s.Job, "version", s.Version, "services", s.Services(), "expires", s.Earliest().UTC().Format(time.RFC3339))
	return true
}

// Drop forgets a job's tokens (its last task on this TaskManager ended).
func (r *Receiver) Drop(job string) {
	r.mu.Lock()
	_, had := r.versions[job]
	delete(r.versions, job)
	for _, sr := range r.services {
		delete(sr.jobs, job)
	}
	r.mu.Unlock()
	if had {
		r.log.Info("delegation tokens dropped: no task of the job runs here any more", "job", job)
	}
}

// Version returns the version of a job's tokens held (0: none).
func (r *Receiver) Version(job string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.versions[job]
}

// Jobs lists the jobs whose tokens are held.
func (r *Receiver) Jobs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.versions))
}

// For is the credentials source of a job's tasks: the job's current token for the asked
// service, looked up at each request so that a connector reconnecting after a renewal gets
// the new one. ErrNone (wrapped) when none is held.
func (r *Receiver) For(job string) credentials.Source {
	return credentials.Func(func(_ context.Context, service string) (any, error) {
		r.mu.Lock()
		sr, ok := r.services[service]
		var ts []credentials.Token
		if ok {
			ts = sr.jobs[job]
		}
		r.mu.Unlock()
		if len(ts) == 0 {
			return nil, fmt.Errorf("%w: %s (no delegation token for job %s)", credentials.ErrNone, service, job)
		}
		t := ts[0]
		if !t.Expires.IsZero() && !r.now().Before(t.Expires) {
			return nil, fmt.Errorf("the %s delegation token of job %s expired at %s and the JobManager sent no renewal (its log and /overview say why)", service, job, t.Expires.UTC().Format(time.RFC3339))
		}
		t.Attributes = maps.Clone(t.Attributes)
		return &t, nil
	})
}
