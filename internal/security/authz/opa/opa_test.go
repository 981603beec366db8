package opa

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

// fakeOPA serves canned answers on http://127.0.0.1 and records requests.
func fakeOPA(t *testing.T, answer http.HandlerFunc) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var last atomic.Value // "<path> <body>"
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		last.Store(r.Method + " " + r.URL.Path + " " + string(body))
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &last
}

func reply(s string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, s) }
}

var bob = authz.Attributes{User: "bob", Groups: []string{"dev"}, Verb: "cancel", Resource: "job/j1",
	Job: &authz.JobACL{Owner: "alice"}, Data: []authz.DataAccess{{Verb: "read", Resource: "file:/srv/in/a"}}}

func TestRequest(t *testing.T) {
	s, last := fakeOPA(t, reply(`{"result":true}`))
	p, err := New(Options{URL: s.URL + "/opa/", Path: "/sluice/authz/decision/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Authorize(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	want := `POST /opa/v1/data/sluice/authz/decision {"input":{"user":"bob","groups":["dev"],"verb":"cancel",` +
		`"resource":{"kind":"job","name":"j1"},"data":[{"verb":"read","resource":{"kind":"file","name":"/srv/in/a"}}],` +
		`"job":{"owner":"alice","viewUsers":[],"viewGroups":[],"modifyUsers":[],"modifyGroups":[]}}}`
	if got := last.Load().(string); got != want {
		t.Errorf("request =\n%s\nwant\n%s", got, want)
	}
}

func TestResultShapes(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       authz.Decision
		reason     string // substring
	}{
		{"true", `{"result":true}`, authz.Allow, "allowed by OPA policy sluice/authz"},
		{"false", `{"result":false}`, authz.Deny, "denied by OPA policy sluice/authz"},
		{"object allow", `{"result":{"allow":true,"reason":"bob is a developer"}}`, authz.Allow, "bob is a developer"},
		{"object deny", `{"result":{"allow":false,"reason":"not on the list"}}`, authz.Deny, "not on the list"},
		{"object without reason", `{"result":{"allow":true}}`, authz.Allow, "allowed by OPA policy"},
		{"undefined", `{}`, authz.Deny, "OPA policy sluice/authz is undefined for this input"},
		{"undefined with decision id", `{"decision_id":"x"}`, authz.Deny, "is undefined for this input"},
		{"null", `{"result":null}`, authz.Deny, "fail closed"},
		{"object without allow", `{"result":{"reason":"hmm"}}`, authz.Deny, "fail closed"},
		{"allow not a bool", `{"result":{"allow":"true"}}`, authz.Deny, "fail closed"},
		{"string", `{"result":"true"}`, authz.Deny, "fail closed"},
		{"number", `{"result":1}`, authz.Deny, "fail closed"},
		{"set of rules", `{"result":{"allow":true,"decision":{"allow":true}}}`, authz.Allow, ""},
		{"malformed", `{"result":tru`, authz.Deny, "malformed answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := fakeOPA(t, reply(tc.body))
			p, err := New(Options{URL: s.URL})
			if err != nil {
				t.Fatal(err)
			}
			d, reason, err := p.Authorize(context.Background(), bob)
			if err != nil || d != tc.want || !strings.Contains(reason, tc.reason) {
				t.Errorf("got %v %q %v, want %v with reason containing %q", d, reason, err, tc.want, tc.reason)
			}
		})
	}
}

func TestFailuresDeny(t *testing.T) {
	const timeout = 300 * time.Millisecond
	wait := func(r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		why    string
	}{
		{"timeout", func(w http.ResponseWriter, r *http.Request) { wait(r); io.WriteString(w, `{"result":true}`) }, "no answer within 300ms"},
		{"slow body", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"result":`)
			w.(http.Flusher).Flush()
			wait(r)
			io.WriteString(w, `true}`)
		}, "no answer within 300ms"},
		{"500 with OPA error", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			io.WriteString(w, `{"code":"internal_error","message":"policy secret details","result":true}`)
		}, "HTTP status 500 (internal_error)"},
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "HTTP status 404"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, "HTTP status 302"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := fakeOPA(t, tc.answer)
			p, err := New(Options{URL: s.URL, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			d, reason, err := p.Authorize(context.Background(), bob)
			if err != nil || d != authz.Deny || !strings.HasPrefix(reason, "OPA authorization failed (fail closed): ") || !strings.Contains(reason, tc.why) {
				t.Errorf("got %v %q %v, want a fail-closed deny mentioning %q", d, reason, err, tc.why)
			}
			if strings.Contains(reason, "secret") {
				t.Errorf("reason repeats OPA's error message: %q", reason)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		p, err := New(Options{URL: "http://" + addr})
		if err != nil {
			t.Fatal(err)
		}
		d, reason, err := p.Authorize(context.Background(), bob)
		if err != nil || d != authz.Deny || !strings.Contains(reason, "refused") {
			t.Errorf("got %v %q %v", d, reason, err)
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		s := httptest.NewTLSServer(reply(`{"result":true}`))
		defer s.Close()
		p, err := New(Options{URL: s.URL}) // system roots do not trust httptest's certificate
		if err != nil {
			t.Fatal(err)
		}
		d, reason, err := p.Authorize(context.Background(), bob)
		if err != nil || d != authz.Deny || !strings.Contains(reason, "certificate") {
			t.Errorf("got %v %q %v", d, reason, err)
		}
		// With the server's certificate trusted, the same server allows.
		p, _ = New(Options{URL: s.URL, TLS: &tls.Config{RootCAs: s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}})
		if d, reason, _ := p.Authorize(context.Background(), bob); d != authz.Allow {
			t.Errorf("trusted: got %v %q", d, reason)
		}
	})
}

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		url, path string
		want      string // "" means accepted
	}{
		{"http://127.0.0.1:8181", "", ""},
		{"http://localhost:8181", "", ""},
		{"http://[::1]:8181", "", ""},
		{"http://127.9.9.9:8181", "", ""},
		{"https://opa.example:8181", "", ""},
		{"http://opa.example:8181", "", "security.authorization.opa.url"},
		{"http://10.0.0.5:8181", "", "non-loopback"},
		{"http://localhost.evil.example:8181", "", "non-loopback"},
		{"ftp://127.0.0.1", "", "security.authorization.opa.url"},
		{"127.0.0.1:8181", "", "security.authorization.opa.url"},
		{"http://127.0.0.1:8181/?x=1", "", "no query"},
		{"http://127.0.0.1:8181", "sluice/../admin", "security.authorization.opa.path"},
		{"http://127.0.0.1:8181", "sluice//authz", "security.authorization.opa.path"},
	} {
		_, err := New(Options{URL: tc.url, Path: tc.path})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("New(%q, %q): %v", tc.url, tc.path, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("New(%q, %q) err = %v, want one containing %q", tc.url, tc.path, err, tc.want)
		}
	}
}

func TestFromConfig(t *testing.T) {
	cfg := config.New()
	if _, err := FromConfig(cfg, nil); err == nil || !strings.Contains(err.Error(), "security.authorization.opa.url") {
		t.Errorf("no URL: err = %v", err)
	}
	cfg.Set("security.authorization.opa.url", "http://127.0.0.1:8181")
	p, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.endpoint != "http://127.0.0.1:8181/v1/data/sluice/authz" || p.timeout != 2*time.Second {
		t.Errorf("defaults: endpoint %s timeout %s", p.endpoint, p.timeout)
	}
	cfg.Set("security.authorization.opa.path", "sluice/authz/decision")
	cfg.Set("security.authorization.opa.timeout", "500 ms")
	p, err = FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.endpoint != "http://127.0.0.1:8181/v1/data/sluice/authz/decision" || p.timeout != 500*time.Millisecond {
		t.Errorf("endpoint %s timeout %s", p.endpoint, p.timeout)
	}
	cfg.Set("security.authorization.opa.url", "https://opa.example")
	cfg.Set("security.authorization.opa.truststore", filepath.Join(t.TempDir(), "missing.pem"))
	if _, err := FromConfig(cfg, nil); err == nil || !strings.Contains(err.Error(), "security.authorization.opa.truststore") {
		t.Errorf("missing trust store: err = %v", err)
	}
}

// opaBinary finds the OPA server test/opa/build.sh builds.
func opaBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SLUICE_OPA"); p != "" {
		return p
	}
	cache := os.Getenv("SLUICE_TEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "sluice-test")
	}
	p := filepath.Join(cache, "opa-v1.22.2", "opa")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OPA server not found at %s: run test/opa/build.sh first (or set SLUICE_OPA)", p)
		}
		t.Skipf("OPA server not found at %s: run test/opa/build.sh (or set SLUICE_OPA) to run this test", p)
	}
	return p
}

// startOPA runs a real OPA server with examples/policy.rego on a free
// loopback port and returns its base URL. The process is stopped at cleanup.
func startOPA(t *testing.T) string {
	t.Helper()
	bin := opaBinary(t)
	policy, err := filepath.Abs("../../../../examples/policy.rego")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "run", "--server", "--addr", addr,
		"--skip-version-check", "--log-level", "error", policy)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("OPA did not become healthy at %s: %v\n%s", base, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestExamplePolicyWithOPA(t *testing.T) {
	base := startOPA(t)
	p, err := New(Options{URL: base, Path: "sluice/authz/decision", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	aliceJob := &authz.JobACL{Owner: "alice", ViewUsers: []string{"bob"}}
	aliceJobPrivate := &authz.JobACL{Owner: "alice"}
	anon := []string{"system:unauthenticated"}
	for _, tc := range []struct {
		name string
		a    authz.Attributes
		want authz.Decision
	}{
		{"alice submits a job", authz.Attributes{User: "alice", Verb: "submit", Resource: "jobs",
			Data: []authz.DataAccess{{Verb: "read", Resource: "file:/srv/in/a"}, {Verb: "write", Resource: "file:/srv/out/alice/x"}}}, authz.Allow},
		{"alice writes to bob's output", authz.Attributes{User: "alice", Verb: "submit", Resource: "jobs",
			Data: []authz.DataAccess{{Verb: "read", Resource: "file:/srv/in/a"}, {Verb: "write", Resource: "file:/srv/out/bob/x"}}}, authz.Deny},
		{"alice escapes /srv/in with ..", authz.Attributes{User: "alice", Verb: "submit", Resource: "jobs",
			Data: []authz.DataAccess{{Verb: "read", Resource: "file:/srv/in/../etc/passwd"}}}, authz.Deny},
		{"alice reads kafka", authz.Attributes{User: "alice", Verb: "submit", Resource: "jobs",
			Data: []authz.DataAccess{{Verb: "read", Resource: "kafka:topic/x"}}}, authz.Deny},
		{"alice views the cluster", authz.Attributes{User: "alice", Verb: "view", Resource: "cluster"}, authz.Allow},
		{"alice views task managers", authz.Attributes{User: "alice", Verb: "view", Resource: "taskmanagers"}, authz.Allow},
		{"alice administers", authz.Attributes{User: "alice", Verb: "admin", Resource: "admin"}, authz.Deny},
		{"alice cancels her job", authz.Attributes{User: "alice", Verb: "cancel", Resource: "job/j1", Job: aliceJob}, authz.Allow},
		{"bob cancels alice's job", authz.Attributes{User: "bob", Verb: "cancel", Resource: "job/j1", Job: aliceJob}, authz.Deny},
		{"bob views alice's job on the view list", authz.Attributes{User: "bob", Verb: "view", Resource: "job/j1", Job: aliceJob}, authz.Allow},
		{"bob views alice's private job", authz.Attributes{User: "bob", Verb: "view", Resource: "job/j1", Job: aliceJobPrivate}, authz.Deny},
		{"ops group on the modify list cancels", authz.Attributes{User: "carol", Groups: []string{"ops"}, Verb: "cancel", Resource: "job/j1",
			Job: &authz.JobACL{Owner: "alice", ModifyGroups: []string{"ops"}}}, authz.Allow},
		{"view group may not cancel", authz.Attributes{User: "carol", Groups: []string{"ops"}, Verb: "cancel", Resource: "job/j1",
			Job: &authz.JobACL{Owner: "alice", ViewGroups: []string{"ops"}}}, authz.Deny},
		{"empty user does not own an ownerless job", authz.Attributes{User: "", Verb: "cancel", Resource: "job/j1", Job: &authz.JobACL{}}, authz.Deny},
		{"root cancels anything", authz.Attributes{User: "root", Verb: "cancel", Resource: "job/j1", Job: aliceJobPrivate}, authz.Allow},
		{"root administers", authz.Attributes{User: "root", Verb: "admin", Resource: "admin",
			Data: []authz.DataAccess{{Verb: "write", Resource: "file:/etc/x"}}}, authz.Allow},
		{"anonymous views the cluster", authz.Attributes{User: "system:anonymous", Groups: anon, Verb: "view", Resource: "cluster"}, authz.Allow},
		{"anonymous views jobs", authz.Attributes{User: "system:anonymous", Groups: anon, Verb: "view", Resource: "jobs"}, authz.Deny},
		{"anonymous views a job", authz.Attributes{User: "system:anonymous", Groups: anon, Verb: "view", Resource: "job/j1", Job: aliceJob}, authz.Deny},
		{"anonymous submits", authz.Attributes{User: "system:anonymous", Groups: anon, Verb: "submit", Resource: "jobs"}, authz.Deny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reason, err := p.Authorize(context.Background(), tc.a)
			if err != nil || d != tc.want {
				t.Errorf("got %v %q %v, want %v", d, reason, err, tc.want)
			}
			if reason == "" || strings.Contains(reason, "fail closed") || strings.Contains(reason, "undefined") {
				t.Errorf("reason %q: want the policy's own reason", reason)
			}
			t.Logf("%v: %s", d, reason)
		})
	}

	// The package document without a rule named like the path is undefined.
	undef, err := New(Options{URL: base, Path: "sluice/authz/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	d, reason, _ := undef.Authorize(context.Background(), authz.Attributes{User: "root", Verb: "view", Resource: "cluster"})
	if d != authz.Deny || reason != "OPA policy sluice/authz/nonexistent is undefined for this input" {
		t.Errorf("undefined path: got %v %q", d, reason)
	}

	// Querying the bare boolean works too.
	allowDoc, _ := New(Options{URL: base, Path: "sluice/authz/allow"})
	if d, _, _ := allowDoc.Authorize(context.Background(), authz.Attributes{User: "alice", Verb: "view", Resource: "cluster"}); d != authz.Allow {
		t.Errorf("sluice/authz/allow: got %v", d)
	}
}
