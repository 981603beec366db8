package tokens

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// fakeProvider issues tokens of a fixed lifetime on a fake clock, or fails while broken.
type fakeProvider struct {
	mu       sync.Mutex
	now      func() time.Time
	life     time.Duration
	broken   error
	calls    int
	released int
}

func (p *fakeProvider) Service() string { return "kafka" }

func (p *fakeProvider) Obtain(_ context.Context, job Job, _ []credentials.Token) ([]credentials.Token, time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.broken != nil {
		return nil, time.Time{}, p.broken
	}
	exp := p.now().Add(p.life)
	return []credentials.Token{{ID: "t", Secret: "s3cret", Expires: exp}}, exp, nil
}

func (p *fakeProvider) Release(context.Context, Job, []credentials.Token) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.released++
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestManager(action string) (*Manager, *fakeProvider, *clock) {
	c := &clock{t: time.Now()}
	p := &fakeProvider{now: c.now, life: time.Hour}
	m := NewManager(Settings{Enabled: true, RetryBackoff: time.Hour, TimeRatio: 0.75, ExpiryMargin: time.Minute,
		ExpiryAction: map[string]string{"kafka": action}}, []Provider{p}, nil)
	m.now = c.now
	return m, p, c
}

func TestManagerRenewsAtTimeRatio(t *testing.T) {
	m, p, c := newTestManager(ActionFail)
	var changes []Set
	m.OnChange = func(s Set) { changes = append(changes, s) }
	set, err := m.Start(context.Background(), Job{ID: "j1"}, map[string][]map[string]string{"kafka": {{}}}, nil)
	if err != nil || set.Version != 1 || len(set.Tokens) != 1 || set.Tokens[0].Service != "kafka" {
		t.Fatalf("Start: %+v, %v", set, err)
	}
	c.t = c.t.Add(44 * time.Minute)
	m.tick(context.Background())
	if p.calls != 1 || len(changes) != 0 {
		t.Fatalf("renewed before 0.75 of the lifetime: %d calls", p.calls)
	}
	c.t = c.t.Add(2 * time.Minute)
	m.tick(context.Background())
	if p.calls != 2 || len(changes) != 1 || changes[0].Version != 2 {
		t.Fatalf("not renewed at 0.75 of the lifetime: %d calls, changes %+v", p.calls, changes)
	}
	if v := m.Version("j1"); v != 2 {
		t.Fatalf("version %d", v)
	}
	m.Stop(context.Background(), "j1")
	if p.released != 1 {
		t.Fatalf("tokens of an ended job not released")
	}
	if _, ok := m.Current("j1"); ok {
		t.Fatal("an ended job's tokens are still held")
	}
}

func TestManagerBrokenProviderFailsJobBeforeLapse(t *testing.T) {
	for _, action := range []string{ActionFail, ActionContinue} {
		t.Run(action, func(t *testing.T) {
			m, p, c := newTestManager(action)
			type exp struct {
				job, svc, reason string
				fail             bool
			}
			var got []exp
			m.OnExpiring = func(job, svc, reason string, fail bool) { got = append(got, exp{job, svc, reason, fail}) }
			if _, err := m.Start(context.Background(), Job{ID: "j1"}, map[string][]map[string]string{"kafka": {{}}}, nil); err != nil {
				t.Fatal(err)
			}
			expires := c.t.Add(time.Hour)
			p.broken = errors.New("broker says no")
			// Tick every 10 s of fake time until the token would lapse: retries happen before
			// the margin however long the configured backoff, and the job is told once.
			for c.t.Before(expires) {
				c.t = c.t.Add(10 * time.Second)
				m.tick(context.Background())
				if len(got) > 0 {
					break
				}
			}
			if len(got) != 1 {
				t.Fatalf("OnExpiring called %d times before the lapse", len(got))
			}
			if !c.t.Before(expires) || expires.Sub(c.t) > time.Minute {
				t.Fatalf("told %s before the lapse, want within the 1 min margin", expires.Sub(c.t))
			}
			if p.calls < 3 {
				t.Fatalf("only %d attempts: the 1 h backoff was not shortened before the lapse", p.calls)
			}
			e := got[0]
			if e.job != "j1" || e.svc != "kafka" || e.fail != (action == ActionFail) {
				t.Fatalf("%+v", e)
			}
			for _, want := range []string{"kafka delegation token expires at", "broker says no", "security.delegation.token.provider.kafka.expiry-action"} {
				if !strings.Contains(e.reason, want) {
					t.Errorf("reason %q lacks %q", e.reason, want)
				}
			}
			st := m.Status()
			if len(st) != 1 || st[0].Failures == 0 || !strings.Contains(st[0].LastError, "broker says no") {
				t.Fatalf("status %+v", st)
			}
			// Repaired: the next retry renews, and the warning may come again later.
			p.broken = nil
			for i := 0; i < 10 && m.Version("j1") == 1; i++ {
				c.t = c.t.Add(5 * time.Second)
				m.tick(context.Background())
			}
			if m.Version("j1") != 2 {
				t.Fatal("not renewed once the provider works again")
			}
		})
	}
}

func TestManagerStartFailureRefusesJob(t *testing.T) {
	m, p, _ := newTestManager(ActionFail)
	p.broken = errors.New("no credential")
	_, err := m.Start(context.Background(), Job{ID: "j1"}, map[string][]map[string]string{"kafka": {{}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "kafka") || !strings.Contains(err.Error(), "security.delegation.token.provider.kafka.enabled") {
		t.Fatalf("err %v", err)
	}
	if _, ok := m.Current("j1"); ok {
		t.Fatal("a refused job holds tokens")
	}
	// A job that uses no service with a provider needs nothing.
	if s, err := m.Start(context.Background(), Job{ID: "j2"}, map[string][]map[string]string{"postgres": {{}}}, nil); err != nil || len(s.Tokens) != 0 {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestManagerShippedTokensAreNotRenewed(t *testing.T) {
	m, p, c := newTestManager(ActionFail)
	var reasons []string
	m.OnExpiring = func(_, _, reason string, _ bool) { reasons = append(reasons, reason) }
	shipped := []credentials.Token{{Service: "kafka", ID: "client", Secret: "x", Expires: c.t.Add(10 * time.Minute)}}
	set, err := m.Start(context.Background(), Job{ID: "j1"}, map[string][]map[string]string{"kafka": {{}}}, shipped)
	if err != nil || len(set.Tokens) != 1 || set.Tokens[0].ID != "client" {
		t.Fatalf("%+v %v", set, err)
	}
	for i := 0; i < 60; i++ {
		c.t = c.t.Add(10 * time.Second)
		m.tick(context.Background())
	}
	if p.calls != 0 {
		t.Fatalf("the provider was asked %d times for a job with shipped tokens", p.calls)
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "shipped with the job") {
		t.Fatalf("reasons %q", reasons)
	}
	if _, err := m.Start(context.Background(), Job{ID: "j3"}, nil, []credentials.Token{{Service: "kafka", Secret: "x", Expires: c.t.Add(-time.Second)}}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired shipped token: %v", err)
	}
}
