package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser is one headless Debian Chromium, driven over the DevTools
// protocol by chromedp, in a fresh profile and a fresh $HOME (its NSS
// database holds the trust anchors and client certificates the test puts
// there). Every console error, uncaught exception, failed request and
// answer >= 400 is collected; check fails the test on any the test did not
// announce with expect.
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context // the first tab

	mu       sync.Mutex
	problems []string
	expected []expectedFailure
	urls     map[network.RequestID]string
	// origins, when set, are the only origins the page may load from:
	// no CDN, no font service, nothing outside the cluster.
	origins []string
}

type expectedFailure struct {
	url    string // substring of the request URL
	status int
}

// browserOptions configure a browser's profile.
type browserOptions struct {
	name string
	// trust is a PEM CA certificate the browser trusts (the sluice CA).
	trust string
	// clientCert and clientKey, when set, are a client certificate the
	// browser holds; it presents it, without asking, to autoSelect (an
	// origin pattern such as "https://localhost:8443").
	clientCert, clientKey string
	autoSelect            []string
	// issuerCN is the client certificate's issuer CN, for auto-selection.
	issuerCN string
	// flags are more command-line switches.
	flags map[string]any
	// negotiate readies the profile for Kerberos (SPNEGO).
	negotiate bool
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	needTool(t, "chromium") // fails in CI, skips elsewhere
	return ""
}

// artifactsDir is where the browser tests save screenshots:
// $SLUICE_TEST_ARTIFACTS, else test/artifacts (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SLUICE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "test", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	inOwnGroup(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newBrowser starts Chromium with the flags the dashboard tests use. It is
// stopped, with every process it started, at cleanup.
func newBrowser(t *testing.T, o browserOptions) *browser {
	t.Helper()
	bin := chromiumPath(t)
	needTool(t, "certutil")
	home := t.TempDir()
	nss := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(nss, 0o700); err != nil {
		t.Fatal(err)
	}
	db := "sql:" + nss
	runTool(t, "certutil", "-N", "-d", db, "--empty-password")
	if o.trust != "" {
		runTool(t, "certutil", "-A", "-d", db, "-n", "sluice-ca", "-t", "C,,", "-i", o.trust)
	}
	profile := t.TempDir()
	if o.clientCert != "" {
		needTool(t, "pk12util")
		needTool(t, "openssl")
		p12 := filepath.Join(t.TempDir(), "client.p12")
		runTool(t, "openssl", "pkcs12", "-export", "-in", o.clientCert, "-inkey", o.clientKey, "-out", p12, "-passout", "pass:test", "-name", "client")
		runTool(t, "pk12util", "-i", p12, "-d", db, "-W", "test")
		// The content setting that Chrome's AutoSelectCertificateForUrls
		// policy sets, as a profile preference: present the certificate
		// without a dialog (a headless browser has no one to click it).
		exceptions := map[string]any{}
		for _, origin := range o.autoSelect {
			exceptions[origin+",*"] = map[string]any{"setting": map[string]any{
				"filters": []any{map[string]any{"ISSUER": map[string]any{"CN": o.issuerCN}}},
			}}
		}
		prefs := map[string]any{"profile": map[string]any{"content_settings": map[string]any{"exceptions": map[string]any{"auto_select_certificate": exceptions}}}}
		data, _ := json.Marshal(prefs)
		if err := os.MkdirAll(filepath.Join(profile, "Default"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(profile, "Default", "Preferences"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.negotiate {
		// Chromium loads the GSS-API library (Kerberos) only once it has
		// seen a Negotiate challenge, from its next start on: it records
		// that in Local State. Start it as if it had.
		ls, _ := json.Marshal(map[string]any{"net": map[string]any{"received_http_auth_negotiate_headers": true}})
		if err := os.WriteFile(filepath.Join(profile, "Local State"), ls, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cmdMu sync.Mutex
	var cmds []*exec.Cmd
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1400, 1000),
		chromedp.Env("HOME=" + home),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			inOwnGroup(cmd)
			cmdMu.Lock()
			cmds = append(cmds, cmd)
			cmdMu.Unlock()
		}),
	}
	// SLUICE_BROWSER_LOG=FILE keeps the browser's own log (its HTTP
	// authentication steps included), for debugging a failing test.
	if os.Getenv("SLUICE_BROWSER_LOG") != "" {
		f, _ := os.Create(os.Getenv("SLUICE_BROWSER_LOG"))
		opts = append(opts, chromedp.CombinedOutput(f), chromedp.Flag("enable-logging", "stderr"), chromedp.Flag("vmodule", "*http_auth*=3,*gssapi*=3,*negotiate*=3"))
	}
	for k, v := range o.flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, name: o.name, urls: map[network.RequestID]string{}}
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(b.onEvent))
	b.ctx = ctx
	// Start the browser now, so a failure to start is reported here.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium (%s): %v", o.name, err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cmdMu.Lock()
		defer cmdMu.Unlock()
		for _, c := range cmds {
			killGroup(c, syscall.SIGKILL)
		}
	})
	return b
}

// onEvent collects the problems of the tab.
func (b *browser) onEvent(ev any) {
	{
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.mu.Lock()
			b.urls[ev.RequestID] = ev.Request.URL
			origins := b.origins
			b.mu.Unlock()
			if u := ev.Request.URL; len(origins) > 0 && (strings.HasPrefix(u, "http:") || strings.HasPrefix(u, "https:")) {
				ok := false
				for _, o := range origins {
					ok = ok || strings.HasPrefix(u, o+"/")
				}
				if !ok {
					b.problem("", 0, "request outside the cluster: "+u)
				}
			}
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				b.problem(ev.Response.URL, int(ev.Response.Status), fmt.Sprintf("HTTP %d for %s", ev.Response.Status, ev.Response.URL))
			}
		case *network.EventLoadingFailed:
			b.mu.Lock()
			url := b.urls[ev.RequestID]
			b.mu.Unlock()
			if !ev.Canceled {
				b.problem(url, -1, fmt.Sprintf("request failed: %s: %s", url, ev.ErrorText))
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.problem("", 0, "console error: "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.problem("", 0, "uncaught exception: "+msg)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				b.problem(ev.Entry.URL, -2, fmt.Sprintf("console (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}
}

// problem records one, unless the test announced it: a failed request to
// an expected URL, and the console's "Failed to load resource" line about
// it (status -2: the log entry names the URL, not the status).
func (b *browser) problem(url string, status int, what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.expected {
		if url != "" && strings.Contains(url, e.url) && (status == e.status || status == -2 || status == -1) {
			return
		}
	}
	b.problems = append(b.problems, what)
}

// expect announces a request the test makes fail on purpose (a forged
// cancel, a cross-site post).
func (b *browser) expect(urlPart string, status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected = append(b.expected, expectedFailure{urlPart, status})
}

// allowOrigins sets the only origins the browser may send requests to.
func (b *browser) allowOrigins(origins ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.origins = append(b.origins, origins...)
}

// check fails the test on every problem collected so far.
func (b *browser) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser %s: %s", b.name, p)
	}
	b.problems = nil
}

// run runs actions in the browser's tab with a deadline.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser %s: %s: %v\n%s", b.name, what, err, b.text())
	}
}

// text is the page's visible text, for failure messages.
func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

// waitJS polls a JavaScript expression until it is true.
func (b *browser) waitJS(timeout time.Duration, what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser %s: timed out after %s waiting for %s (last error %v)\npage:\n%s", b.name, timeout, what, err, b.text())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eval evaluates expr (awaiting a promise) and decodes its JSON value
// into out.
func (b *browser) eval(what, expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser %s: %s: %v\n%s", b.name, what, err, b.text())
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatalf("browser %s: %s: %s: %v", b.name, what, raw, err)
	}
}

// screenshot saves the page as name.png in the artifacts directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser %s: screenshot %s: %v", b.name, name, err)
	}
	path := filepath.Join(artifactsDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// cookies returns the browser's cookies.
func (b *browser) cookies() []*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		b.t.Fatalf("browser %s: cookies: %v", b.name, err)
	}
	return r.Cookies
}
