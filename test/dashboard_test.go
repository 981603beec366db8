package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// dashEnv is a JobManager with the dashboard on two listeners: "web"
// (HTTPS, client certificates requested, bearer tokens; the token login)
// and "local" (plaintext loopback, anonymous: no login), an ACL policy
// with an operator (alice), a viewer (victor) and anonymous viewers, and
// one TaskManager.
type dashEnv struct {
	c                  *cluster
	certs, ca          string
	webURL, plainURL   string // https://localhost:PORT, http://127.0.0.1:PORT
	webPort            string
	tokens             string // the token file
	adminToken         string
	viewerToken        string
	aliceCrt, aliceKey string
	issuerCN           string
	client             *http.Client // trusts the sluice CA
}

const dashPolicy = `
roles:
  operator:
    - verbs: ["*"]
      resources: [cluster, taskmanagers, config, logs, metrics, jobs, "job/*", admin]
  viewer:
    - verbs: [view, list]
      resources: [cluster, taskmanagers, jobs, "job/*"]
bindings:
  - role: operator
    users: [alice]
  - role: viewer
    users: [victor]
  - role: viewer
    groups: ["system:unauthenticated"]
`

func startDashboard(t *testing.T, extra ...string) *dashEnv {
	t.Helper()
	e := &dashEnv{certs: createCertsHosts(t, "localhost")}
	e.ca = filepath.Join(e.certs, "ca.crt")
	tokens := filepath.Join(t.TempDir(), "tokens")
	e.adminToken = newToken(t, tokens, "alice", "ops")
	e.viewerToken = newToken(t, tokens, "victor", "")
	e.tokens = tokens
	p := loadPKI(t, e.certs)
	e.issuerCN = p.cert.Subject.CommonName
	e.aliceCrt, e.aliceKey = p.issueUser(t, t.TempDir(), "alice", pkix.Name{CommonName: "alice", Organization: []string{"ops"}})
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(dashPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	listeners := `[{name: web, address: "127.0.0.1:0", tls: true, client-auth: request, authentication: [x509, token]},` +
		`{name: local, address: "127.0.0.1:0", tls: false, authentication: [anonymous]}]`
	c := &cluster{t: t}
	c.defines = append([]string{"jobmanager.rpc.address=127.0.0.1", "jobmanager.bind-host=127.0.0.1",
		"jobmanager.rpc.port=0", "taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1",
		"taskmanager.numberOfTaskSlots=4"}, extra...)
	c.jm = startProc(t, "jobmanager", append([]string{"jobmanager", "--work-dir", t.TempDir(),
		"-D", "rest.listeners=" + listeners,
		"-D", "security.ssl.rest.keystore=" + filepath.Join(e.certs, "rest.pem"),
		"-D", "security.ssl.rest.truststore=" + e.ca,
		"-D", "security.rest.authentication.token.file=" + tokens,
		"-D", "security.authorization.mode=acl",
		"-D", "security.authorization.acl.policy-file=" + policy,
	}, defineArgs(c.defines)...)...)
	c.waitJMStarted()
	e.webPort = port(c.restURLs["web"])
	e.webURL = "https://localhost:" + e.webPort
	e.plainURL = c.restURLs["local"]
	c.restURL = e.plainURL
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(e.ca)
	pool.AppendCertsFromPEM(pem)
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.addTM()
	c.waitFor(30*time.Second, "taskmanager registered", func() bool {
		var o map[string]any
		return c.get("/overview", &o) == nil && o["taskmanagers"] == float64(1)
	})
	e.c = c
	return e
}

// do sends one request to the web listener.
func (e *dashEnv) do(t *testing.T, method, path string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.webURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// submitUnbounded submits examples/unbounded.yaml as the token's user and
// waits until it runs.
func (e *dashEnv) submitUnbounded(t *testing.T, token string) string {
	t.Helper()
	spec, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/unbounded.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"spec": string(spec), "parameters": map[string]string{"rate": "500"}})
	resp, out := e.do(t, "POST", "/jobs", map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}, string(body))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, out)
	}
	var r struct{ JobID string }
	json.Unmarshal([]byte(out), &r)
	e.c.waitFor(30*time.Second, "job running", func() bool { return e.c.jobState(r.JobID) == "RUNNING" })
	return r.JobID
}

// TestDashboardHeaders: every answer, the page and the API's alike, carries
// a strict Content-Security-Policy (no inline script, no framing), nosniff
// and no-referrer; the page and its assets load without a credential on a
// listener without anonymous, and everything else needs one.
func TestDashboardHeaders(t *testing.T) {
	e := startDashboard(t)
	for _, p := range []string{"/", "/index.html", "/overview", "/auth/info", "/no-such-page"} {
		resp, body := e.do(t, "GET", p, nil, "")
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %s", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: Content-Security-Policy allows inline script or eval: %q", p, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", p, resp.Header)
		}
		switch p {
		case "/", "/index.html":
			if resp.StatusCode != 200 || !strings.Contains(body, `<script type="module"`) || strings.Contains(body, "<script>") {
				t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
			}
			// Every script and style is a file of the JobManager's own.
			for _, ref := range []string{"src=\"", "href=\""} {
				for _, part := range strings.Split(body, ref)[1:] {
					if u := part[:strings.Index(part, "\"")]; !strings.HasPrefix(u, "./") && !strings.HasPrefix(u, "#") {
						t.Errorf("GET %s: the page loads %s from elsewhere", p, u)
					}
				}
			}
		case "/overview":
			if resp.StatusCode != 401 {
				t.Errorf("GET /overview without a credential: %d", resp.StatusCode)
			}
		case "/auth/info":
			if resp.StatusCode != 200 || !strings.Contains(body, `"authenticated": false`) || !strings.Contains(body, `"login": true`) {
				t.Errorf("GET /auth/info: %d %s", resp.StatusCode, body)
			}
		}
	}
	// The page's assets are served with their type (nosniff needs it).
	_, page := e.do(t, "GET", "/", nil, "")
	i := strings.Index(page, "./assets/")
	asset := page[i+1 : i+strings.Index(page[i:], "\"")]
	resp, _ := e.do(t, "GET", asset, nil, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET %s: %d %s", asset, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The plaintext listener offers no login, and says why.
	resp2, err := http.Get(e.plainURL + "/auth/info")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !strings.Contains(string(data), `"login": false`) || !strings.Contains(string(data), "plaintext") {
		t.Errorf("plaintext /auth/info: %s", data)
	}
	req, _ := http.NewRequest("POST", e.plainURL+"/auth/login", nil)
	req.Header.Set("Authorization", "Bearer "+e.adminToken)
	resp3, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp3.Body)
	resp3.Body.Close()
	if resp3.StatusCode != 403 || !strings.Contains(string(data), "plaintext") || resp3.Header.Get("Set-Cookie") != "" {
		t.Errorf("login on the plaintext listener: %d %s %v", resp3.StatusCode, data, resp3.Header)
	}
}

// TestDashboardSessions: the token login without a browser: the cookie's
// attributes, the CSRF token and Origin checks on state-changing requests,
// logout, the idle timeout, and a revoked token ending its session.
func TestDashboardSessions(t *testing.T) {
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	e := startDashboard(t, "security.rest.session.idle-timeout=3 s", "security.audit.log.path="+auditLog, "security.audit.log.level=all")
	id := e.submitUnbounded(t, e.adminToken)
	login := func(token string) (cookie, csrf string) {
		t.Helper()
		resp, body := e.do(t, "POST", "/auth/login", map[string]string{"Authorization": "Bearer " + token}, "")
		if resp.StatusCode != 200 {
			t.Fatalf("login: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(body, token) {
			t.Fatal("the login answer holds the token")
		}
		sc := resp.Header.Get("Set-Cookie")
		for _, want := range []string{"__Host-sluice-session=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(sc, want) {
				t.Errorf("Set-Cookie %q lacks %s", sc, want)
			}
		}
		if strings.Contains(strings.ToLower(sc), "domain=") {
			t.Errorf("Set-Cookie %q has a Domain", sc)
		}
		var ans struct {
			CSRF string `json:"csrf-token"`
		}
		json.Unmarshal([]byte(body), &ans)
		return strings.SplitN(strings.TrimPrefix(sc, "__Host-sluice-session="), ";", 2)[0], ans.CSRF
	}
	cookie, csrf := login(e.adminToken)
	withCookie := func(extra map[string]string) map[string]string {
		h := map[string]string{"Cookie": "__Host-sluice-session=" + cookie}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	if resp, body := e.do(t, "GET", "/whoami", withCookie(nil), ""); resp.StatusCode != 200 || !strings.Contains(body, `"alice"`) {
		t.Fatalf("whoami with the session: %d %s", resp.StatusCode, body)
	}
	// State-changing requests with the cookie: without the CSRF token,
	// with a wrong one, or from another site, refused; with it, allowed.
	canI := `{"verb": "cancel", "resource": "job/` + id + `"}`
	for name, h := range map[string]map[string]string{
		"no CSRF token":    withCookie(nil),
		"wrong CSRF token": withCookie(map[string]string{"X-CSRF-Token": "x" + csrf}),
		"cross-site":       withCookie(map[string]string{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}),
		"other origin":     withCookie(map[string]string{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}),
	} {
		if resp, body := e.do(t, "POST", "/auth/can-i", h, canI); resp.StatusCode != 403 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	if resp, body := e.do(t, "POST", "/auth/can-i", withCookie(map[string]string{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin", "Origin": e.webURL}), canI); resp.StatusCode != 200 || !strings.Contains(body, `"allowed": true`) {
		t.Errorf("can-i with the CSRF token: %d %s", resp.StatusCode, body)
	}
	// A cross-site post is refused whatever the credential: here a client
	// certificate, which a browser sends by itself.
	cert, err := tls.LoadX509KeyPair(e.aliceCrt, e.aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	certClient := *e.client
	tr := e.client.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	certClient.Transport = tr
	req, _ := http.NewRequest("PATCH", e.webURL+"/jobs/"+id+"?mode=cancel", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := certClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || e.c.jobState(id) != "RUNNING" {
		t.Fatalf("cross-site cancel with a client certificate: %d, job %s", resp.StatusCode, e.c.jobState(id))
	}
	// A client certificate needs no login: the login wants a token.
	req, _ = http.NewRequest("POST", e.webURL+"/auth/login", nil)
	resp, err = certClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("login with a client certificate: %d %v", resp.StatusCode, resp.Header)
	}
	// Logout ends the session on the server.
	if resp, body := e.do(t, "POST", "/auth/logout", withCookie(map[string]string{"X-CSRF-Token": csrf}), ""); resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := e.do(t, "GET", "/whoami", withCookie(nil), ""); resp.StatusCode != 401 {
		t.Errorf("whoami after logout: %d", resp.StatusCode)
	}
	// Idle timeout (3 s here): a session not used for longer ends.
	cookie, _ = login(e.viewerToken)
	idleSince := time.Now()
	e.c.waitFor(20*time.Second, "idle session expired", func() bool {
		if time.Since(idleSince) < 3*time.Second {
			return false // using it would keep it alive
		}
		resp, _ := e.do(t, "GET", "/whoami", withCookie(nil), "")
		return resp.StatusCode == 401
	})
	// A login never reuses an id, and a session of one listener is
	// nothing on another (cookies are not bound to ports).
	c1, _ := login(e.viewerToken)
	c2, _ := login(e.viewerToken)
	if c1 == c2 {
		t.Error("two logins got the same session id")
	}
	req, _ = http.NewRequest("GET", e.plainURL+"/whoami", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-sluice-session", Value: c1})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(data), "system:anonymous") {
		t.Errorf("a web session on the plaintext listener: %s", data)
	}
	// Revoking the token (removing it from the token file) ends the
	// sessions made from it.
	revoked, _ := login(e.viewerToken)
	if resp, _ := e.do(t, "GET", "/whoami", map[string]string{"Cookie": "__Host-sluice-session=" + revoked}, ""); resp.StatusCode != 200 {
		t.Fatalf("fresh session: %d", resp.StatusCode)
	}
	data, err = os.ReadFile(e.tokens)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, ",victor") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(e.tokens, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	e.c.waitFor(20*time.Second, "session of a revoked token ended", func() bool {
		resp, _ := e.do(t, "GET", "/whoami", map[string]string{"Cookie": "__Host-sluice-session=" + revoked}, "")
		return resp.StatusCode == 401
	})
	// Logins and logouts are audited, with the user, never the token or
	// the session id; neither is in the process log either.
	e.c.waitFor(10*time.Second, "login and logout audited", func() bool {
		data, _ := os.ReadFile(auditLog)
		return strings.Contains(string(data), `"stage":"session"`) && strings.Contains(string(data), `"verb":"logout"`) &&
			strings.Contains(string(data), `"verb":"login","resource":"self"`)
	})
	audited, _ := os.ReadFile(auditLog)
	for _, tok := range []string{e.adminToken, e.viewerToken, cookie, c1} {
		if strings.Contains(e.c.jm.Log(), tok) || strings.Contains(string(audited), tok) {
			t.Fatal("the JobManager logged or audited a token or a session id")
		}
	}
}

// TestDashboardBrowser drives the dashboard in headless Chromium: the
// login page, a token login, the overview, a running job's graph with its
// live record counts, cancelling it; a viewer sees no cancel button and a
// cancel forged from the page with the session cookie gets 403; a
// cross-site form post gets 403; a browser with a client certificate sees
// no login form; the plaintext listener shows no login and says why; and
// the dashboard works behind nginx under a path prefix. Screenshots go to
// test/artifacts (or $SLUICE_TEST_ARTIFACTS). No console error and no
// failed request may happen that the test did not cause on purpose.
func TestDashboardBrowser(t *testing.T) {
	chromiumPath(t)
	nginx := nginxPath(t)
	e := startDashboard(t, "rest.trusted-proxies=127.0.0.2", "execution.checkpointing.interval=1 s",
		"state.checkpoints.dir="+t.TempDir(), "state.savepoints.dir="+t.TempDir(), "env.log.dir="+t.TempDir())
	art := artifactsDir(t)
	// An endless job with event time (watermarks) and checkpoints.
	spec := filepath.Join(t.TempDir(), "dashboard-demo.yaml")
	if err := os.WriteFile(spec, []byte(dashboardDemoJob), 0o644); err != nil {
		t.Fatal(err)
	}

	// --- An operator logs in with a token, submits, watches, cancels. ---
	admin := newBrowser(t, browserOptions{name: "operator", trust: e.ca})
	// Everything the page loads comes from the JobManager (the attacker's
	// page of the cross-site test aside).
	admin.allowOrigins(e.webURL)
	admin.run("open the dashboard", chromedp.Navigate(e.webURL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)))
	admin.screenshot("dashboard-login")
	admin.run("log in", chromedp.SendKeys(chromedp.CSS(`[data-testid="token-input"]`), e.adminToken),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="overview"] .card`)))
	admin.waitJS(10*time.Second, "who-am-I badge", `document.querySelector('[data-testid="username"]')?.textContent === 'alice'`)
	// The token is not kept anywhere the page's script can reach.
	var leaked bool
	admin.eval("token kept?", fmt.Sprintf(`(() => { const t = %q; return document.documentElement.outerHTML.includes(t) || document.cookie.includes('sluice') || localStorage.length + sessionStorage.length > 0 })()`, e.adminToken), &leaked)
	if leaked {
		t.Error("the token or the session id is reachable from the page's script")
	}
	var sawCookie bool
	for _, c := range admin.cookies() {
		if c.Name == "__Host-sluice-session" {
			sawCookie = true
			if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/" {
				t.Errorf("session cookie attributes: %+v", c)
			}
		}
	}
	if !sawCookie {
		t.Error("no session cookie after login")
	}
	// Submit from the dashboard: a spec file, a parameter, a parallelism.
	admin.run("submit page", chromedp.Navigate(e.webURL+"/#/submit"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="submit-spec"]`)),
		chromedp.SetUploadFiles(chromedp.CSS(`[data-testid="submit-spec"]`), []string{spec}),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="submit-params"]`), "rate=500"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="submit-parallelism"]`), "2"),
		chromedp.Click(chromedp.CSS(`[data-testid="submit-job"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="submit-status"] a`)))
	var id string
	admin.eval("job id", `document.querySelector('[data-testid="submit-status"] a').textContent`, &id)
	e.c.waitFor(30*time.Second, "job running", func() bool { return e.c.jobState(id) == "RUNNING" })
	admin.run("overview", chromedp.Navigate(e.webURL+"/#/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="job-list"] [data-testid="job-link"]`)))
	admin.waitJS(10*time.Second, "running job listed", `[...document.querySelectorAll('[data-testid="job-list"] tr')].some(r => r.textContent.includes('RUNNING'))`)
	admin.screenshot("dashboard-overview")
	admin.run("job page", chromedp.Navigate(e.webURL+"/#/jobs/"+id), chromedp.WaitVisible(chromedp.CSS(`[data-testid="job-graph"] svg .vertex`)))
	// The graph: one box per vertex with its parallelism, edges with their
	// partitioning, and live record counts.
	admin.waitJS(30*time.Second, "non-zero record counts in the graph", `(() => {
		const outs = [...document.querySelectorAll('[data-testid="job-graph"] .rec-out')].map(e => +e.dataset.records || 0);
		const ins = [...document.querySelectorAll('[data-testid="job-graph"] .rec-in')].map(e => +e.dataset.records || 0);
		return outs.some(n => n > 0) && ins.some(n => n > 0);
	})()`)
	var graph struct {
		Vertices int      `json:"vertices"`
		Edges    int      `json:"edges"`
		Labels   []string `json:"labels"`
		Par      []string `json:"par"`
	}
	admin.eval("graph", `({
		vertices: document.querySelectorAll('[data-testid="job-graph"] .vertex').length,
		edges: document.querySelectorAll('[data-testid="job-graph"] .edge').length,
		labels: [...document.querySelectorAll('[data-testid="job-graph"] .edge-label')].map(e => e.textContent),
		par: [...document.querySelectorAll('[data-testid="job-graph"] .vertex-par')].map(e => e.textContent),
	})`, &graph)
	if graph.Vertices < 2 || graph.Edges < 1 || len(graph.Labels) != graph.Edges || !strings.Contains(strings.Join(graph.Par, " "), "×2") {
		t.Errorf("job graph: %+v", graph)
	}
	admin.waitJS(10*time.Second, "cancel and stop buttons", `!!document.querySelector('[data-testid="cancel-job"]') && !!document.querySelector('[data-testid="stop-job"]')`)
	// Checkpoints complete and watermarks advance, and the page shows both.
	admin.waitJS(30*time.Second, "completed checkpoints shown", `/completed [1-9]/.test(document.querySelector('[data-testid="checkpoints"]').textContent)`)
	admin.waitJS(30*time.Second, "a watermark shown", `[...document.querySelectorAll('[data-testid="job-graph"] .wm')].some(e => e.textContent.startsWith('wm 20'))`)
	// A click on a vertex shows its subtasks: where each runs, its
	// records, its back-pressure.
	admin.run("vertex details", chromedp.Click(chromedp.CSS(`[data-testid="job-graph"] .vertex`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="subtask-table"]`)))
	admin.waitJS(10*time.Second, "two subtasks on tm-1", `document.querySelectorAll('[data-testid="subtask-table"] tbody tr').length === 2 && document.querySelector('[data-testid="subtask-table"]').textContent.includes('tm-1')`)
	admin.screenshot("dashboard-job")
	// The other pages: TaskManagers, one TaskManager, the masked
	// configuration, the JobManager log (alice may view logs).
	admin.run("taskmanagers", chromedp.Navigate(e.webURL+"/#/taskmanagers"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="tm-list"] a`)),
		chromedp.Click(chromedp.CSS(`[data-testid="tm-list"] a`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="tm-detail"] table`)))
	admin.waitJS(10*time.Second, "TaskManager details", `document.querySelector('[data-testid="tm-detail"]').textContent.includes('tm-1')`)
	admin.run("a TaskManager's log file", chromedp.WaitVisible(chromedp.CSS(`[data-testid="tm-logs"] [data-testid="log-file-link"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="tm-logs"] [data-testid="log-file-link"]`)))
	admin.waitJS(10*time.Second, "the TaskManager's log shown", `document.querySelector('[data-testid="log-file"]').textContent.includes('taskmanager started')`)
	admin.run("configuration", chromedp.Navigate(e.webURL+"/#/config"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="config-table"]`)))
	var configText string
	admin.eval("configuration text", `document.querySelector('[data-testid="config-table"]').textContent`, &configText)
	if !strings.Contains(configText, "security.rest.session.idle-timeout") {
		t.Errorf("configuration page: %.300s", configText)
	}
	admin.run("log", chromedp.Navigate(e.webURL+"/#/log"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="jm-log"]`)))
	admin.waitJS(10*time.Second, "log lines", `document.querySelector('[data-testid="jm-log"]').textContent.includes('job submitted')`)
	admin.run("the JobManager's log file", chromedp.WaitVisible(chromedp.CSS(`[data-testid="jm-logs"] [data-testid="log-file-link"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="jm-logs"] [data-testid="log-file-link"]`)))
	admin.waitJS(10*time.Second, "the JobManager's log file shown", `document.querySelector('[data-testid="jm-logs"] [data-testid="log-file"]').textContent.includes('jobmanager started')`)

	// --- A viewer: no cancel button; a forged cancel gets 403. ---
	viewer := newBrowser(t, browserOptions{name: "viewer", trust: e.ca})
	viewer.allowOrigins(e.webURL, strings.TrimSuffix(e.plainURL, "/"))
	viewer.run("viewer login", chromedp.Navigate(e.webURL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="token-input"]`), e.viewerToken),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="overview"] .card`)),
		chromedp.Navigate(e.webURL+"/#/jobs/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="job-graph"] svg .vertex`)),
		chromedp.WaitReady(chromedp.CSS(`[data-testid="action-status"]`)))
	var buttons int
	viewer.eval("buttons", `document.querySelectorAll('[data-testid="cancel-job"], [data-testid="stop-job"]').length`, &buttons)
	if buttons != 0 {
		t.Errorf("the viewer is shown %d cancel/stop buttons", buttons)
	}
	var nav string
	viewer.eval("nav", `document.getElementById('nav').textContent`, &nav)
	if strings.Contains(nav, "Submit") || strings.Contains(nav, "log") {
		t.Errorf("the viewer's navigation offers what it may not use: %q", nav)
	}
	viewer.expect("/jobs/"+id+"?mode=cancel", 403)
	var forged struct {
		WithToken        int    `json:"withToken"`
		WithoutToken     int    `json:"withoutToken"`
		WithTokenBody    string `json:"withTokenBody"`
		WithoutTokenBody string `json:"withoutTokenBody"`
	}
	viewer.eval("forged cancel", fmt.Sprintf(`(async () => {
		const info = await (await fetch('auth/info')).json();
		const csrf = info.session['csrf-token'];
		const a = await fetch('jobs/%[1]s?mode=cancel', {method: 'PATCH', headers: {'X-CSRF-Token': csrf}});
		const b = await fetch('jobs/%[1]s?mode=cancel', {method: 'PATCH'});
		return {withToken: a.status, withTokenBody: await a.text(), withoutToken: b.status, withoutTokenBody: await b.text()};
	})()`, id), &forged)
	if forged.WithToken != 403 || !strings.Contains(forged.WithTokenBody, "victor may not cancel") || forged.WithoutToken != 403 || !strings.Contains(forged.WithoutTokenBody, "CSRF") {
		t.Errorf("forged cancel as the viewer: %+v", forged)
	}
	if st := e.c.jobState(id); st != "RUNNING" {
		t.Fatalf("after the viewer's forged cancel the job is %s", st)
	}

	// --- A cross-site form post, from a page on another origin. ---
	evil := startEvilSite(t, e.webURL+"/jobs/"+id+"/stop")
	admin.allowOrigins(strings.TrimSuffix(evil, "/"))
	for _, b := range []*browser{admin} {
		b.expect("/jobs/"+id+"/stop", 403)
		b.run("cross-site form post", chromedp.Navigate(evil), chromedp.WaitVisible(chromedp.ID("go")), chromedp.Click(chromedp.ID("go")))
		b.waitJS(15*time.Second, "the cross-site post answered", `location.href.includes('/stop') && document.body.innerText.includes('cross-site request refused')`)
	}
	if st := e.c.jobState(id); st != "RUNNING" {
		t.Fatalf("after the cross-site post the job is %s", st)
	}

	// --- A client certificate in the browser: no login form. ---
	withCert := newBrowser(t, browserOptions{name: "client-cert", trust: e.ca, clientCert: e.aliceCrt, clientKey: e.aliceKey,
		issuerCN: e.issuerCN, autoSelect: []string{e.webURL}})
	withCert.run("open with a client certificate", chromedp.Navigate(e.webURL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="overview"] .card`)))
	withCert.waitJS(10*time.Second, "x509 identity", `document.querySelector('[data-testid="auth-method"]')?.textContent === 'x509' && document.querySelector('[data-testid="username"]')?.textContent === 'alice'`)
	var loginForms int
	withCert.eval("login form?", `document.querySelectorAll('[data-testid="login-form"], [data-testid="login-link"]').length`, &loginForms)
	if loginForms != 0 {
		t.Error("a browser with a client certificate is shown a login form")
	}
	// The cross-site post with the certificate (which the browser sends by
	// itself) is refused too.
	withCert.expect("/jobs/"+id+"/stop", 403)
	withCert.run("cross-site form post with a certificate", chromedp.Navigate(evil), chromedp.WaitVisible(chromedp.ID("go")), chromedp.Click(chromedp.ID("go")))
	withCert.waitJS(15*time.Second, "the cross-site post answered", `location.href.includes('/stop') && document.body.innerText.includes('cross-site request refused')`)
	if st := e.c.jobState(id); st != "RUNNING" {
		t.Fatalf("after the cross-site post with a certificate the job is %s", st)
	}

	// --- The plaintext listener: what anonymous may see, no login. ---
	viewer.run("plaintext listener", chromedp.Navigate(e.plainURL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-unavailable"]`)))
	var plain struct {
		Notice string `json:"notice"`
		Forms  int    `json:"forms"`
		User   string `json:"user"`
	}
	viewer.eval("plaintext page", `({notice: document.querySelector('[data-testid="login-unavailable"]').textContent,
		forms: document.querySelectorAll('[data-testid="login-form"], [data-testid="login-link"], input[type=password]').length,
		user: document.querySelector('[data-testid="username"]')?.textContent})`, &plain)
	if !strings.Contains(plain.Notice, "plaintext") || plain.Forms != 0 || plain.User != "system:anonymous" {
		t.Errorf("plaintext listener: %+v", plain)
	}

	// --- Behind nginx under /sluice/. ---
	proxied := startNginxFor(t, nginx, e)
	behind := newBrowser(t, browserOptions{name: "behind-nginx", trust: e.ca})
	behind.run("login behind nginx", chromedp.Navigate(proxied+"/sluice/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="token-input"]`), e.adminToken),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="overview"] .card`)),
		chromedp.Navigate(proxied+"/sluice/#/jobs/"+id),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="job-graph"] svg .vertex`)))
	behind.waitJS(30*time.Second, "records behind nginx", `[...document.querySelectorAll('[data-testid="job-graph"] .rec-out')].some(e => +e.dataset.records > 0)`)
	var loc string
	behind.eval("location", `location.pathname`, &loc)
	if loc != "/sluice/" {
		t.Errorf("behind nginx the page is at %s", loc)
	}

	// --- The operator cancels the job from its page. ---
	admin.run("cancel", chromedp.Navigate(e.webURL+"/#/jobs/"+id), chromedp.WaitVisible(chromedp.CSS(`[data-testid="cancel-job"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="cancel-job"]`)), chromedp.Click(chromedp.CSS(`[data-testid="cancel-job"]`)))
	e.c.waitFor(30*time.Second, "job canceled", func() bool { return e.c.jobState(id) == "CANCELED" })
	admin.waitJS(15*time.Second, "canceled on the page", `document.querySelector('.job-header .state')?.textContent === 'CANCELED'`)

	// Stop with a savepoint, from the page of another job.
	id2 := e.submitUnbounded(t, e.adminToken)
	admin.run("stop with savepoint", chromedp.Navigate(e.webURL+"/#/jobs/"+id2), chromedp.WaitVisible(chromedp.CSS(`[data-testid="stop-job"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="stop-job"]`)))
	admin.waitJS(15*time.Second, "stop requested", `document.querySelector('[data-testid="action-status"]')?.textContent.includes('Stopping with savepoint')`)
	e.c.waitFor(30*time.Second, "job stopped", func() bool { st := e.c.jobState(id2); return st == "FINISHED" || st == "CANCELED" })

	// Logout ends the session: the page shows the login again.
	admin.run("logout", chromedp.Click(chromedp.CSS(`[data-testid="logout"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)))

	for _, b := range []*browser{admin, viewer, withCert, behind} {
		b.check()
	}
	t.Logf("screenshots in %s", art)
}

// dashboardDemoJob is endless, with event time (watermarks behind the
// ingestion time) and a keyed aggregate: something for every part of the
// job page.
const dashboardDemoJob = `name: dashboard-demo
parameters:
  rate: "200"
operators:
  - name: gen
    type: generator
    count: 0
    rate: ${rate}
    keys: 10
  - name: stamp
    type: watermark
    input: gen
    timestamp: ingestion
    watermark: {max-out-of-orderness: 1s, idle-timeout: 10s}
  - name: by-key
    type: key_by
    input: stamp
    key: key
  - name: total
    type: aggregate
    input: by-key
    function: sum
    field: value
    as: total
  - name: sink
    type: blackhole
    input: total
`

// startEvilSite serves, on another origin (http://127.0.0.1:PORT), a page
// with a form that posts to target: the classic CSRF attack.
func startEvilSite(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(`<!doctype html><title>evil</title>
<form id="f" method="POST" action="%s"><input type="hidden" name="drain" value="false"></form>
<button id="go" onclick="document.getElementById('f').submit()">win a prize</button>`, target)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			w.WriteHeader(http.StatusNoContent) // the browser's /favicon.ico
			return
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, page)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String() + "/"
}

// startNginxFor runs nginx with TLS (the REST certificate) in front of the
// web listener under /sluice/, and returns its https://localhost:PORT.
func startNginxFor(t *testing.T, nginx string, e *dashEnv) string {
	t.Helper()
	dir := t.TempDir()
	p := freePort(t)
	rest := filepath.Join(e.certs, "rest.pem")
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d ssl;
    ssl_certificate %[4]s;
    ssl_certificate_key %[4]s;
    location /sluice/ {
      proxy_pass https://127.0.0.1:%[3]s/;
      proxy_bind 127.0.0.2;
      proxy_ssl_trusted_certificate %[5]s;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_server_name on;
      proxy_set_header X-Forwarded-Prefix /sluice;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, dir, p, e.webPort, rest, e.ca)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", cf)
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	cmd.Stdout, cmd.Stderr = out, out
	inOwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killGroup(cmd, syscall.SIGKILL); cmd.Wait() })
	base := fmt.Sprintf("https://localhost:%d", p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.client.Get(base + "/sluice/auth/info")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not come up (%v): %s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDashboardKerberos: a browser holding a Kerberos ticket for the
// realm, with the JobManager's host allowed for Negotiate, is logged in by
// SPNEGO without a login form.
func TestDashboardKerberos(t *testing.T) {
	chromiumPath(t)
	e := startKerberosJM(t) // sets KRB5_CONFIG and KRB5CCNAME (alice's ticket) for this test
	b := newBrowser(t, browserOptions{name: "kerberos", trust: e.ca, negotiate: true,
		flags: map[string]any{"auth-server-allowlist": "localhost"}})
	b.run("open with a ticket", chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="overview"] .card`)))
	b.waitJS(15*time.Second, "kerberos identity", `document.querySelector('[data-testid="auth-method"]')?.textContent === 'kerberos' && document.querySelector('[data-testid="username"]')?.textContent === 'alice'`)
	var forms int
	b.eval("login form?", `document.querySelectorAll('[data-testid="login-form"], [data-testid="login-link"]').length`, &forms)
	if forms != 0 {
		t.Error("a browser with a Kerberos ticket is shown a login form")
	}
	b.check()
}
