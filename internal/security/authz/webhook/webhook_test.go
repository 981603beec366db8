package webhook

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

// reviewServer is an HTTPS authorization service under the test's control.
type reviewServer struct {
	*httptest.Server
	ca    *testCA
	count atomic.Int64

	mu     sync.Mutex
	bodies [][]byte
	answer http.HandlerFunc
}

func newReviewServer(t *testing.T, answer http.HandlerFunc) *reviewServer {
	t.Helper()
	ca := newCA(t, "webhook test CA")
	return newReviewServerCA(t, ca, answer, nil)
}

func newReviewServerCA(t *testing.T, ca *testCA, answer http.HandlerFunc, tc *tls.Config) *reviewServer {
	t.Helper()
	s := &reviewServer{ca: ca, answer: answer}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count.Add(1)
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, body)
		answer := s.answer
		s.mu.Unlock()
		answer(w, r)
	}))
	cert, _ := ca.issue(t, "127.0.0.1")
	if tc == nil {
		tc = &tls.Config{}
	}
	tc.Certificates = []tls.Certificate{cert}
	s.TLS = tc
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *reviewServer) lastBody() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[len(s.bodies)-1]
}

func status(allowed, denied bool, reason string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"apiVersion":"sluice.authorization/v1","kind":"AccessReview","status":{"allowed":%t,"denied":%t,"reason":%q}}`,
			allowed, denied, reason)
	}
}

func newWebhook(t *testing.T, s *reviewServer, o Options) *Webhook {
	t.Helper()
	o.URL = s.URL + "/authorize"
	if o.TLS == nil {
		o.TLS = &tls.Config{RootCAs: s.ca.pool}
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

var alice = authz.Attributes{User: "alice", Groups: []string{"dev"}, Verb: "view", Resource: "cluster"}

func TestDecisions(t *testing.T) {
	for _, tc := range []struct {
		name            string
		allowed, denied bool
		want            authz.Decision
	}{
		{"allowed", true, false, authz.Allow},
		{"denied", false, true, authz.Deny},
		{"neither", false, false, authz.NoOpinion},
		{"both is a deny", true, true, authz.Deny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newReviewServer(t, status(tc.allowed, tc.denied, "because "+tc.name))
			w := newWebhook(t, s, Options{})
			d, reason, err := w.Authorize(context.Background(), alice)
			if err != nil {
				t.Fatal(err)
			}
			if d != tc.want || reason != "because "+tc.name {
				t.Errorf("got %v %q, want %v %q", d, reason, tc.want, "because "+tc.name)
			}
		})
	}
}

func TestRequestBody(t *testing.T) {
	var contentType string
	s := newReviewServer(t, func(w http.ResponseWriter, r *http.Request) {
		contentType = r.Header.Get("Content-Type")
		status(true, false, "")(w, r)
	})
	w := newWebhook(t, s, Options{})
	a := authz.Attributes{
		User: "alice", Groups: []string{"dev", "ops"}, Method: "token", Verb: "submit", Resource: "job/abc",
		Job: &authz.JobACL{Owner: "alice", ViewUsers: []string{"bob"}, ModifyGroups: []string{"ops"}},
		Data: []authz.DataAccess{
			{Verb: "read", Resource: "file:/srv/in/a"},
			{Verb: "write", Resource: "kafka:topic/x"},
		},
		Listener: "public", RemoteAddr: "10.1.2.3:4444", RequestID: "req-1",
	}
	if _, _, err := w.Authorize(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if contentType != "application/json" {
		t.Errorf("Content-Type = %q", contentType)
	}
	want := `{"apiVersion":"sluice.authorization/v1","kind":"AccessReview","spec":{` +
		`"user":"alice","groups":["dev","ops"],"verb":"submit","resource":{"kind":"job","name":"abc"},` +
		`"data":[{"verb":"read","resource":{"kind":"file","name":"/srv/in/a"}},{"verb":"write","resource":{"kind":"kafka","name":"topic/x"}}],` +
		`"job":{"owner":"alice","viewUsers":["bob"],"viewGroups":[],"modifyUsers":[],"modifyGroups":["ops"]},` +
		`"listener":"public"}}`
	if got := string(s.lastBody()); got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}

	// Without a job, groups or data: no "job" key, empty lists (not null).
	if _, _, err := w.Authorize(context.Background(), authz.Attributes{User: "anon", Verb: "view", Resource: "cluster"}); err != nil {
		t.Fatal(err)
	}
	want = `{"apiVersion":"sluice.authorization/v1","kind":"AccessReview","spec":{` +
		`"user":"anon","groups":[],"verb":"view","resource":{"kind":"cluster","name":""},"data":[]}}`
	if got := string(s.lastBody()); got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
}

func TestSplitResource(t *testing.T) {
	for _, tc := range []struct{ in, kind, name string }{
		{"job/abc", "job", "abc"},
		{"cluster", "cluster", ""},
		{"jobs", "jobs", ""},
		{"job/a/b", "job", "a/b"},
		{"job/a:b", "job", "a:b"},
		{"file:/x", "file", "/x"},
		{"kafka:topic/x", "kafka", "topic/x"},
		{"socket:host:9000", "socket", "host:9000"},
		{"", "", ""},
	} {
		if got := splitResource(tc.in); got != (Resource{tc.kind, tc.name}) {
			t.Errorf("splitResource(%q) = %+v, want {%s %s}", tc.in, got, tc.kind, tc.name)
		}
	}
}

// refusedURL returns an https URL on which nothing listens.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "https://" + addr + "/authorize"
}

// waitOrDone sleeps d or until the client gives up, so slow handlers do not
// hold up the server's Close.
func waitOrDone(r *http.Request, d time.Duration) {
	select {
	case <-time.After(d):
	case <-r.Context().Done():
	}
}

// TestFailureModes checks every way of failing to get an answer yields the
// failure policy's decision, and never the allow the server would give.
func TestFailureModes(t *testing.T) {
	const timeout = 300 * time.Millisecond
	allow := status(true, false, "late or broken allow")
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		url    func(t *testing.T, s *reviewServer) string // default s.URL
		tls    func(s *reviewServer) *tls.Config
		why    string // expected in the reason
	}{
		{name: "timeout before headers", answer: func(w http.ResponseWriter, r *http.Request) {
			waitOrDone(r, 5*time.Second)
			allow(w, r)
		}, why: "no answer within 300ms"},
		{name: "slow body past timeout", answer: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"status":{"allo`)
			w.(http.Flusher).Flush()
			waitOrDone(r, 5*time.Second)
			io.WriteString(w, `wed":true}}`)
		}, why: "no answer within 300ms"},
		{name: "status 500", answer: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"status":{"allowed":true}}`)
		}, why: "HTTP status 500"},
		{name: "redirect", answer: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect)
		}, why: "HTTP status 307"},
		{name: "malformed JSON", answer: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":{"allowed":true`)
		}, why: "malformed answer"},
		{name: "wrong types", answer: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":{"allowed":"yes"}}`)
		}, why: "malformed answer"},
		{name: "no status", answer: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"allowed":true}`)
		}, why: "no status"},
		{name: "huge answer", answer: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":{"allowed":true},"x":"`+strings.Repeat("a", MaxResponse)+`"}`)
		}, why: "larger than"},
		{name: "untrusted server certificate", answer: allow,
			tls: func(*reviewServer) *tls.Config { return &tls.Config{RootCAs: newCA(t, "other CA").pool} },
			why: "certificate"},
		{name: "system roots do not trust the test CA", answer: allow,
			tls: func(*reviewServer) *tls.Config { return &tls.Config{} },
			why: "certificate"},
		{name: "connection refused", answer: allow,
			url: func(t *testing.T, _ *reviewServer) string { return refusedURL(t) },
			why: "refused"},
	} {
		for _, policy := range []string{FailureDeny, FailureNoOpinion} {
			t.Run(tc.name+"/"+policy, func(t *testing.T) {
				s := newReviewServer(t, tc.answer)
				o := Options{Timeout: timeout, FailurePolicy: policy}
				if tc.tls != nil {
					o.TLS = tc.tls(s)
				}
				w := newWebhook(t, s, o)
				if tc.url != nil {
					w.url = tc.url(t, s)
				}
				start := time.Now()
				d, reason, err := w.Authorize(context.Background(), alice)
				if elapsed := time.Since(start); elapsed > 3*time.Second {
					t.Errorf("took %s, timeout is %s", elapsed, timeout)
				}
				if err != nil {
					t.Fatalf("err = %v, want nil (the failure policy decides)", err)
				}
				wantD, wantPrefix := authz.Deny, "authorization webhook failed (fail closed): "
				if policy == FailureNoOpinion {
					wantD, wantPrefix = authz.NoOpinion, "authorization webhook failed (no opinion): "
				}
				t.Logf("reason: %s", reason)
				if d != wantD || !strings.HasPrefix(reason, wantPrefix) || !strings.Contains(reason, tc.why) {
					t.Errorf("got %v %q; want %v, reason starting %q and containing %q", d, reason, wantD, wantPrefix, tc.why)
				}
				// A failure is not cached: the next request asks again.
				before := s.count.Load()
				w.Authorize(context.Background(), alice)
				if tc.url == nil && tc.tls == nil && s.count.Load() != before+1 {
					t.Errorf("failure was cached: server saw %d requests, want %d", s.count.Load(), before+1)
				}
			})
		}
	}
}

func TestCallerContextCanceled(t *testing.T) {
	s := newReviewServer(t, func(w http.ResponseWriter, r *http.Request) {
		waitOrDone(r, 5*time.Second)
		status(true, false, "")(w, r)
	})
	w := newWebhook(t, s, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	d, reason, err := w.Authorize(ctx, alice)
	if err != nil || d != authz.Deny || !strings.Contains(reason, "fail closed") {
		t.Errorf("got %v %q %v, want a fail-closed deny", d, reason, err)
	}
}

// fakeClock lets cache tests move time without sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCache(t *testing.T) {
	// The server allows alice and denies everyone else; the reason is
	// the user it was asked about.
	var s *reviewServer
	s = newReviewServer(t, func(w http.ResponseWriter, r *http.Request) {
		var rev AccessReview
		json.Unmarshal(s.lastBody(), &rev)
		status(rev.Spec.User == "alice", rev.Spec.User != "alice", rev.Spec.User)(w, r)
	})
	w := newWebhook(t, s, Options{})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	w.nowForTTL = clock.Now
	ctx := context.Background()
	bob := alice
	bob.User = "bob"

	check := func(a authz.Attributes, want authz.Decision, wantCount int64) {
		t.Helper()
		d, reason, err := w.Authorize(ctx, a)
		if err != nil || d != want || reason != a.User {
			t.Errorf("%s: got %v %q %v, want %v %q", a.User, d, reason, err, want, a.User)
		}
		if n := s.count.Load(); n != wantCount {
			t.Errorf("%s: server saw %d requests, want %d", a.User, n, wantCount)
		}
	}
	check(alice, authz.Allow, 1)
	check(alice, authz.Allow, 1) // cached
	check(bob, authz.Deny, 2)
	check(bob, authz.Deny, 2) // cached

	// A request that differs in any field is a different entry.
	other := alice
	other.Resource = "job/x"
	check(other, authz.Allow, 3)

	// Fields outside the review (request ID, address) do not split the cache.
	moved := alice
	moved.RemoteAddr, moved.RequestID = "10.9.9.9:1", "req-2"
	check(moved, authz.Allow, 3)

	// Past the denied TTL (30s) bob is asked again; alice's allow (5m) stays.
	clock.Add(31 * time.Second)
	check(bob, authz.Deny, 4)
	check(alice, authz.Allow, 4)

	// Past the allowed TTL alice is asked again.
	clock.Add(5 * time.Minute)
	check(alice, authz.Allow, 5)
}

func TestCacheNoOpinionUsesDeniedTTL(t *testing.T) {
	s := newReviewServer(t, status(false, false, "ask someone else"))
	w := newWebhook(t, s, Options{CacheTTLAllowed: time.Hour, CacheTTLDenied: 10 * time.Second})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	w.nowForTTL = clock.Now
	for range 2 {
		if d, _, _ := w.Authorize(context.Background(), alice); d != authz.NoOpinion {
			t.Fatalf("got %v", d)
		}
	}
	if n := s.count.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
	clock.Add(11 * time.Second)
	w.Authorize(context.Background(), alice)
	if n := s.count.Load(); n != 2 {
		t.Errorf("after denied TTL: server saw %d requests, want 2", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	s := newReviewServer(t, status(true, false, ""))
	w := newWebhook(t, s, Options{CacheTTLAllowed: -1, CacheTTLDenied: -1})
	for range 3 {
		w.Authorize(context.Background(), alice)
	}
	if n := s.count.Load(); n != 3 {
		t.Errorf("server saw %d requests, want 3 (caching off)", n)
	}
}

func TestLargeRequestNotCached(t *testing.T) {
	s := newReviewServer(t, status(true, false, ""))
	w := newWebhook(t, s, Options{})
	big := alice
	for i := range 200 {
		big.Data = append(big.Data, authz.DataAccess{Verb: "read", Resource: fmt.Sprintf("file:/srv/in/some/long/path/%04d", i)})
	}
	for range 2 {
		if d, _, err := w.Authorize(context.Background(), big); d != authz.Allow || err != nil {
			t.Fatalf("got %v %v", d, err)
		}
	}
	if len(s.lastBody()) <= maxCachedRequest {
		t.Fatalf("request is only %d bytes; the test needs one over %d", len(s.lastBody()), maxCachedRequest)
	}
	if n := s.count.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2 (a request over 10 KB is not cached)", n)
	}
	if n := w.cache.len(); n != 0 {
		t.Errorf("cache holds %d entries, want 0", n)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newDecisionCache(3)
	exp := time.Unix(2000, 0)
	now := time.Unix(1000, 0)
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, authz.Allow, k, exp)
	}
	c.get("a", now) // a is now the most recently used
	c.put("d", authz.Deny, "d", exp)
	if c.len() != 3 {
		t.Errorf("len = %d, want 3", c.len())
	}
	if _, _, ok := c.get("b", now); ok {
		t.Error("least recently used entry b was not evicted")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, _, ok := c.get(k, now); !ok {
			t.Errorf("entry %s evicted", k)
		}
	}
	if _, _, ok := c.get("a", exp); ok {
		t.Error("expired entry served")
	}
}

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{URL: "http://authz.example/check"}, "security.authorization.webhook.url"},
		{Options{URL: "http://127.0.0.1:9000/check"}, "not https"},
		{Options{URL: "ftp://authz.example/"}, "not https"},
		{Options{URL: "authz.example/check"}, "security.authorization.webhook.url"},
		{Options{URL: ""}, "security.authorization.webhook.url"},
		{Options{URL: "https://user:hunter2@authz.example/"}, ""},
		{Options{URL: "https://authz.example/", FailurePolicy: "allow"}, "security.authorization.webhook.failure-policy"},
	} {
		_, err := New(tc.o)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("New(%q): %v", tc.o.URL, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("New(%+v) err = %v, want one containing %q", tc.o, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the URL password: %v", err)
		}
	}
	// The test hook: plain http only when explicitly allowed from this package.
	if _, err := New(Options{URL: "http://127.0.0.1:1/", allowHTTP: true}); err != nil {
		t.Errorf("allowHTTP: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	w, err := New(Options{URL: "https://authz.example/"})
	if err != nil {
		t.Fatal(err)
	}
	if w.timeout != DefaultTimeout || w.ttlAllow != DefaultCacheTTLAllowed || w.ttlDeny != DefaultCacheTTLDenied || !w.failDeny {
		t.Errorf("defaults: timeout %s allow %s deny %s failDeny %v", w.timeout, w.ttlAllow, w.ttlDeny, w.failDeny)
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromConfigMutualTLS(t *testing.T) {
	ca := newCA(t, "webhook CA")
	s := newReviewServerCA(t, ca, status(true, false, "ok"), &tls.Config{
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  ca.pool,
	})
	_, clientPEM := ca.issue(t, "sluice-jobmanager")

	cfg := config.New()
	set := func(k, v string) {
		t.Helper()
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set("security.authorization.webhook.url", s.URL+"/authorize")
	set("security.authorization.webhook.truststore", ca.writeTrustStore(t))
	set("security.authorization.webhook.truststore-type", "PEM")
	set("security.authorization.webhook.timeout", "2 s")
	set("security.authorization.webhook.cache-ttl.allowed", "0")

	// No client certificate: the server refuses the handshake; fail closed.
	w, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.ttlAllow >= 0 || w.ttlDeny != 30*time.Second || w.timeout != 2*time.Second {
		t.Errorf("from config: ttlAllow %s ttlDeny %s timeout %s", w.ttlAllow, w.ttlDeny, w.timeout)
	}
	if d, reason, _ := w.Authorize(context.Background(), alice); d != authz.Deny || !strings.Contains(reason, "fail closed") {
		t.Errorf("without client certificate: got %v %q, want a fail-closed deny", d, reason)
	}

	set("security.authorization.webhook.keystore", writeFile(t, "client.pem", clientPEM))
	set("security.authorization.webhook.keystore-type", "PEM")
	w2, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if d, reason, err := w2.Authorize(context.Background(), alice); d != authz.Allow || err != nil {
		t.Errorf("with client certificate: got %v %q %v, want allow", d, reason, err)
	}
}

func TestFromConfigErrors(t *testing.T) {
	cfg := config.New()
	if _, err := FromConfig(cfg, nil); err == nil || !strings.Contains(err.Error(), "security.authorization.webhook.url") {
		t.Errorf("no URL: err = %v", err)
	}
	cfg.Set("security.authorization.webhook.url", "http://authz.example/")
	if _, err := FromConfig(cfg, nil); err == nil || !strings.Contains(err.Error(), "security.authorization.webhook.url") {
		t.Errorf("http URL: err = %v", err)
	}
	cfg.Set("security.authorization.webhook.url", "https://authz.example/")
	cfg.Set("security.authorization.webhook.truststore", filepath.Join(t.TempDir(), "missing.pem"))
	if _, err := FromConfig(cfg, nil); err == nil || !strings.Contains(err.Error(), "security.authorization.webhook.truststore") {
		t.Errorf("missing trust store: err = %v", err)
	}
	if err := cfg.Set("security.authorization.webhook.failure-policy", "allow"); err == nil {
		t.Error("failure-policy allow accepted by the config")
	}
}
