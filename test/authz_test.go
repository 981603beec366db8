package test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// authzScenario is the end-to-end story, on a JobManager with two
// listeners and the given authorization settings:
// alice submits and cancels her own job; bob may view it but his cancel
// gets 403 with the reason; a view-list member sees it in /jobs/overview,
// others do not; anonymous on the loopback listener may view the overview
// only; a super user may do all; a job that writes where alice may not
// write is refused at submit, naming the path.
func authzScenario(t *testing.T, e *restEnv, tokens map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	as := func(user string, args ...string) (string, string, int) {
		return runSluice(ctx, t, append(args, "--jobmanager", e.extURL, "--cacert", e.ca, "--token", tokens[user])...)
	}
	get := func(user, path string) (int, string) {
		return curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+tokens[user], e.extURL+path)
	}

	// alice submits, naming bob as a viewer.
	out, stderr, code := as("alice", "run", "examples/unbounded.yaml", "--detached", "-p", "1", "--param", "rate=100", "--view-users", "bob")
	if code != 0 {
		t.Fatalf("alice submit: %s %s", out, stderr)
	}
	id := strings.TrimSpace(out)
	// bob (view list) sees it and may view it; carol does not see it.
	if code, body := get("bob", "/jobs/overview"); code != 200 || !strings.Contains(body, id) {
		t.Errorf("bob's overview: %d %s", code, body)
	}
	if code, body := get("bob", "/jobs/"+id); code != 200 {
		t.Errorf("bob views alice's job: %d %s", code, body)
	}
	if code, body := get("carol", "/jobs/overview"); code != 200 || strings.Contains(body, id) {
		t.Errorf("carol's overview must not show alice's job: %d %s", code, body)
	}
	if code, _ := get("carol", "/jobs/"+id); code != 403 {
		t.Errorf("carol views alice's job: %d, want 403", code)
	}
	// What the job prints is the job's data: the same view right guards it.
	if code, body := get("carol", "/jobs/"+id+"/output"); code != 403 {
		t.Errorf("carol reads alice's job output: %d %s, want 403", code, body)
	}
	if code, body := get("bob", "/jobs/"+id+"/output"); code != 200 || !strings.Contains(body, "next-offset") {
		t.Errorf("bob (view list) reads alice's job output: %d %s", code, body)
	}
	// bob's cancel: 403 with the reason, printed by the CLI.
	_, stderr, code = as("bob", "cancel", id)
	if code == 0 || !strings.Contains(stderr, "forbidden") || !strings.Contains(stderr, "bob") || !strings.Contains(stderr, "cancel") {
		t.Errorf("bob's cancel: exit %d, %q", code, stderr)
	}
	out, _, code = as("bob", "auth", "can-i", "cancel", "job/"+id)
	if code == 0 || !strings.HasPrefix(out, "no") {
		t.Errorf("bob can-i cancel: %d %q", code, out)
	}
	out, _, code = as("alice", "auth", "can-i", "cancel", "job/"+id)
	if code != 0 || !strings.HasPrefix(out, "yes") {
		t.Errorf("alice can-i cancel her job: %d %q", code, out)
	}
	// Anonymous on the loopback listener: the overview only.
	if code, body := curl(t, e.localURL+"/overview"); code != 200 {
		t.Errorf("anonymous overview: %d %s", code, body)
	}
	for _, p := range []string{"/jobs/" + id, "/taskmanagers", "/jobmanager/config"} {
		if code, _ := curl(t, e.localURL+p); code != 403 {
			t.Errorf("anonymous GET %s: %d, want 403", p, code)
		}
	}
	// The job list is filtered, not refused: anonymous may view no job.
	if code, body := curl(t, e.localURL+"/jobs/overview"); code != 200 || strings.Contains(body, id) {
		t.Errorf("anonymous job list: %d %s", code, body)
	}
	// A job writing where alice may not write is refused at submit.
	spec := filepath.Join(t.TempDir(), "sneaky.yaml")
	os.WriteFile(spec, []byte("name: sneaky\noperators:\n  - {name: g, type: generator, count: 10}\n  - {name: out, type: file, input: g, path: /srv/out/bob/stolen}\n"), 0o644)
	_, stderr, code = as("alice", "run", spec)
	if code == 0 || !strings.Contains(stderr, "/srv/out/bob/stolen") {
		t.Errorf("alice writing to bob's directory: exit %d, %q (want the path named)", code, stderr)
	}
	// alice cancels her own job.
	if _, stderr, code := as("alice", "cancel", id); code != 0 {
		t.Fatalf("alice cancels her job: %s", stderr)
	}
	// The super user may do everything, including others' jobs.
	out, stderr, code = as("alice", "run", "examples/unbounded.yaml", "--detached", "-p", "1", "--param", "rate=100")
	if code != 0 {
		t.Fatalf("alice submit 2: %s", stderr)
	}
	id2 := strings.TrimSpace(out)
	for _, p := range []string{"/jobs/overview", "/jobs/" + id2, "/taskmanagers", "/jobmanager/config", "/metrics"} {
		if code, body := get("root", p); code != 200 {
			t.Errorf("root GET %s: %d %.200s", p, code, body)
		}
	}
	if _, stderr, code := as("root", "cancel", id2); code != 0 {
		t.Errorf("root cancels alice's job: %s", stderr)
	}
}

func authzTokens(t *testing.T, e *restEnv) map[string]string {
	tokens := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol", "root"} {
		tokens[u] = newToken(t, e.tokens, u, "")
	}
	// The token file is reloaded within seconds. (Polling with the new
	// tokens before that would count as failed authentications and trip
	// the limiter, so wait for the reload itself.)
	e.c.waitFor(15*time.Second, "token file reloaded", func() bool {
		return strings.Contains(e.c.jm.Log(), "tokens=5")
	})
	return tokens
}

// TestAuthorizationACL runs the scenario with the shipped policy file,
// used verbatim, and checks the audit log.
func TestAuthorizationACL(t *testing.T) {
	needTool(t, "curl")
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(policy, data, 0o600)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	e := startRESTExample(t, "security.authorization.mode=acl", "security.authorization.acl.policy-file="+policy,
		"security.audit.log.path="+auditLog, "security.audit.log.level=all")
	tokens := authzTokens(t, e)
	authzScenario(t, e, tokens)

	st, err := os.Stat(auditLog)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(auditLog)
	for _, tok := range tokens {
		if strings.Contains(string(raw), tok) {
			t.Fatal("a token reached the audit log")
		}
	}
	denied := false
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if ev["user"] == "bob" && ev["verb"] == "cancel" && ev["decision"] != "allow" {
			denied = true
			for _, f := range []string{"time", "request-id", "authentication-method", "resource", "authorizer", "reason", "listener", "remote-address"} {
				if _, ok := ev[f]; !ok {
					t.Errorf("audit event lacks %q: %s", f, line)
				}
			}
		}
	}
	if !denied {
		t.Errorf("bob's denied cancel is not in the audit log:\n%s", raw)
	}
	// Policy reload without restart: grant carol the developer role.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	carol := func() int {
		_, _, code := runSluice(ctx, t, "auth", "can-i", "submit", "jobs", "--jobmanager", e.extURL, "--cacert", e.ca, "--token", tokens["carol"])
		return code
	}
	if carol() == 0 {
		t.Fatal("carol may submit before the policy change")
	}
	updated := strings.Replace(string(data), "users: [alice, bob]", "users: [alice, bob, carol]", 1)
	os.WriteFile(policy, []byte(updated), 0o600)
	e.c.waitFor(10*time.Second, "policy reloaded", func() bool { return carol() == 0 })
	// A broken policy keeps the previous one.
	os.WriteFile(policy, []byte("roles: [this is not a policy\n"), 0o600)
	e.c.waitFor(15*time.Second, "the broken policy logged", func() bool {
		return strings.Contains(e.c.jm.Log(), "authorization policy not reloaded; keeping the previous policy")
	})
	if carol() != 0 {
		t.Fatal("a broken policy file replaced the working one")
	}
	fmt.Fprintln(os.Stderr)
}

// opaBinary finds the OPA server that test/opa/build.sh builds (make deps).
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
			t.Fatalf("OPA is required in CI (make deps builds it with test/opa/build.sh): %v", err)
		}
		t.Skip("OPA not built: run test/opa/build.sh")
	}
	return p
}

// TestAuthorizationOPA: the same scenario decided by a real OPA server
// running the shipped examples/policy.rego.
func TestAuthorizationOPA(t *testing.T) {
	needTool(t, "curl")
	port := freePort(t)
	opa := startProcBin(t, "opa", opaBinary(t), "run", "--server", "--addr", fmt.Sprintf("127.0.0.1:%d", port),
		filepath.Join(repoRoot(t), "examples/policy.rego"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := curl(t, fmt.Sprintf("http://127.0.0.1:%d/health", port)); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OPA did not start:\n%s", opa.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	e := startRESTExample(t, "security.authorization.mode=opa",
		fmt.Sprintf("security.authorization.opa.url=http://127.0.0.1:%d", port),
		"security.authorization.opa.path=sluice/authz/decision")
	authzScenario(t, e, authzTokens(t, e))
}

// TestAuthorizationWebhook: a JobManager asking an HTTPS webhook. Each
// failure mode (500, malformed JSON, an answer slower than the timeout, a
// server certificate the JobManager does not trust) denies (fail closed)
// and is audited; an identical request inside the cache TTL is answered
// from the cache (the server sees one request).
func TestAuthorizationWebhook(t *testing.T) {
	needTool(t, "curl")
	certs := createCertsHosts(t, "localhost")
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(certs, "rest.pem"), filepath.Join(certs, "rest.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Value
	mode.Store("allow")
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var review struct {
			Spec struct {
				User string `json:"user"`
			} `json:"spec"`
		}
		_ = json.NewDecoder(r.Body).Decode(&review)
		switch mode.Load().(string) {
		case "allow":
			fmt.Fprintf(w, `{"status": {"allowed": true, "reason": "webhook likes %s"}}`, review.Spec.User)
		case "500":
			http.Error(w, "boom", 500)
		case "garbage":
			fmt.Fprint(w, `{"status": {"allowed": tru`)
		case "slow":
			time.Sleep(1500 * time.Millisecond)
			fmt.Fprint(w, `{"status": {"allowed": true}}`)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
	srv.StartTLS()
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	e := startRESTExample(t, "security.authorization.mode=webhook", "security.authorization.webhook.url="+url,
		"security.authorization.webhook.truststore="+filepath.Join(certs, "ca.crt"), "security.authorization.webhook.timeout=500 ms",
		"security.audit.log.path="+auditLog, "security.audit.log.level=all")
	tokens := authzTokens(t, e)
	get := func(path string) (int, string) {
		return curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+tokens["alice"], e.extURL+path)
	}
	// Allowed, then the identical request comes from the cache.
	hits.Store(0)
	if code, body := get("/taskmanagers"); code != 200 {
		t.Fatalf("allowed by the webhook: %d %s", code, body)
	}
	if code, _ := get("/taskmanagers"); code != 200 || hits.Load() != 1 {
		t.Fatalf("second identical request: %d, webhook saw %d requests (want 1: cached)", code, hits.Load())
	}
	// Each failure mode denies, fail closed.
	for i, m := range []string{"500", "garbage", "slow"} {
		mode.Store(m)
		path := fmt.Sprintf("/jobs/%032d", i) // a new request, not in the cache
		if code, body := get(path); code != 403 || !strings.Contains(body, "fail") {
			t.Errorf("webhook %s: %d %s (want 403, fail closed)", m, code, body)
		}
	}
	raw, _ := os.ReadFile(auditLog)
	if n := strings.Count(string(raw), "fail closed"); n < 3 {
		t.Errorf("%d fail-closed denials audited, want 3:\n%s", n, raw)
	}
	// A webhook whose certificate the JobManager does not trust.
	e2 := startRESTExample(t, "security.authorization.mode=webhook", "security.authorization.webhook.url="+url,
		"security.authorization.webhook.truststore="+filepath.Join(createCertsHosts(t, "localhost"), "ca.crt"))
	mode.Store("allow")
	tokens2 := authzTokens(t, e2)
	if code, body := curl(t, "--cacert", e2.ca, "-H", "Authorization: Bearer "+tokens2["alice"], e2.extURL+"/taskmanagers"); code != 403 || !strings.Contains(body, "fail") {
		t.Errorf("untrusted webhook certificate: %d %s (want 403)", code, body)
	}
}
