package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// auditEvents reads a JSON-lines audit log.
func auditEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// replaceKeepingStat rewrites file with old replaced by new (of the same
// length) and restores its modification time, so the file's stat does not
// change and the JobManager's poller does not notice: only POST
// /admin/reload can apply the change.
func replaceKeepingStat(t *testing.T, file, old, new string) {
	t.Helper()
	if len(old) != len(new) {
		t.Fatalf("replacement %q -> %q changes the size", old, new)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), old, new, 1)), st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestRESTAuditAndReload: on the shipped two-listener example with the
// shipped policy and an audit log,
//   - a submission that reads an allowed path and writes a forbidden one is
//     refused naming the write, and the audit event names the write;
//   - every failed authentication is an audit event (method, reason,
//     listener, address), never with the credential;
//   - POST /admin/reload applies an edited token file and policy at once
//     (the files' stat is kept, so the poller cannot be what applied them),
//     reports each reloader, and a broken policy is reported and kept out;
//     the outcome is a metric.
func TestRESTAuditAndReload(t *testing.T) {
	needTool(t, "curl")
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(policy, data, 0o600)
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	e := startRESTExample(t, "security.authorization.mode=acl", "security.authorization.acl.policy-file="+policy,
		"security.audit.log.path="+auditLog, "security.audit.log.level=denied")
	tokens := authzTokens(t, e)
	ext := func(user string, args ...string) (int, string) {
		return curl(t, append([]string{"--cacert", e.ca, "-H", "Authorization: Bearer " + tokens[user]}, args...)...)
	}

	// Defect: read allowed, write forbidden -> the write is named.
	spec := "name: mixed\noperators:\n  - {name: in, type: file, path: /srv/in/words, format: text}\n  - {name: out, type: file, input: in, path: /srv/out/bob/stolen}\n"
	body, _ := json.Marshal(map[string]any{"spec": spec})
	code, out := ext("alice", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", string(body), e.extURL+"/jobs")
	if code != 403 || !strings.Contains(out, "write file:/srv/out/bob/stolen") || strings.Contains(out, "read file:/srv/in/words") {
		t.Errorf("read allowed + write forbidden: %d %s (want 403 naming the write)", code, out)
	}
	// Failed authentications, on each listener-facing method.
	const badToken = "sluice_NotARealTokenButLongEnough0123456789"
	if code, out := curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+badToken, e.extURL+"/whoami"); code != 401 {
		t.Fatalf("bad token: %d %s", code, out)
	}
	// A client certificate from a CA the listener does not trust fails in
	// the TLS handshake, before any HTTP request: audited all the same.
	stranger := loadPKI(t, createCertsHosts(t, "localhost"))
	mCrt, mKey := stranger.issueUser(t, t.TempDir(), "mallory", pkix.Name{CommonName: "alice"})
	if code, out := curl(t, "--cacert", e.ca, "--cert", mCrt, "--key", mKey, e.extURL+"/whoami"); code == 200 {
		t.Fatalf("certificate from an untrusted CA admitted: %s", out)
	}
	var denied, authnFailed, handshakeFailed bool
	e.c.waitFor(10*time.Second, "the refused handshake audited", func() bool {
		for _, ev := range auditEvents(t, auditLog) {
			if ev["stage"] == "authentication" && ev["request"] == "TLS handshake" {
				handshakeFailed = ev["authentication-method"] == "x509" && ev["listener"] == "external" &&
					ev["remote-address"] == "127.0.0.1" && strings.Contains(fmt.Sprint(ev["reason"]), "unknown CA")
				return true
			}
		}
		return false
	})
	if !handshakeFailed {
		raw, _ := os.ReadFile(auditLog)
		t.Errorf("refused client certificate audited wrongly:\n%s", grepLines(string(raw), "TLS handshake"))
	}
	for _, ev := range auditEvents(t, auditLog) {
		if ev["request"] == "TLS handshake" {
			continue
		}
		if ev["user"] == "alice" && ev["decision"] == "deny" && ev["verb"] != "submit" {
			if ev["resource"] != "file:/srv/out/bob/stolen" {
				t.Errorf("denied data access audited as %v %v, want write file:/srv/out/bob/stolen: %v", ev["verb"], ev["resource"], ev)
			}
			denied = true
		}
		if ev["stage"] == "authentication" {
			authnFailed = true
			if ev["authentication-method"] != "token" || ev["listener"] != "external" || ev["remote-address"] != "127.0.0.1" ||
				ev["decision"] != "deny" || !strings.Contains(fmt.Sprint(ev["reason"]), "invalid bearer token") {
				t.Errorf("failed authentication event: %v", ev)
			}
		}
	}
	if !denied || !authnFailed {
		t.Errorf("audit log lacks the denied write (%v) or the failed authentication (%v)", denied, authnFailed)
	}
	raw, _ := os.ReadFile(auditLog)
	if strings.Contains(string(raw), badToken) || strings.Contains(string(raw), "NotARealToken") {
		t.Fatal("the audit log holds the presented token")
	}

	// Reload: a new token for craig replaces carol's, and the policy's
	// developer binding names craig instead of alice. Same sizes, same
	// mtimes: the poller sees no change.
	craigFile := filepath.Join(t.TempDir(), "craig")
	craig := newToken(t, craigFile, "craig", "")
	craigLine, _ := os.ReadFile(craigFile)
	var carolLine string
	tf, _ := os.ReadFile(e.tokens)
	for _, l := range strings.Split(string(tf), "\n") {
		if strings.Contains(l, ",carol,") || strings.HasSuffix(l, ",carol") {
			carolLine = l
		}
	}
	replaceKeepingStat(t, e.tokens, carolLine, strings.TrimSpace(string(craigLine)))
	replaceKeepingStat(t, policy, "users: [alice, bob]", "users: [craig, bob]")
	tokens["craig"] = craig
	if code, _ := ext("craig", e.extURL+"/whoami"); code != 401 {
		t.Fatalf("craig's token works before the reload (%d): the test cannot tell a reload from the poller", code)
	}
	code, out = ext("root", "-X", "POST", e.extURL+"/admin/reload")
	var rel struct {
		Reloaded []struct {
			Name, Kind, Error string
			OK                bool
		}
	}
	if err := json.Unmarshal([]byte(out), &rel); code != 200 || err != nil {
		t.Fatalf("POST /admin/reload: %d %s", code, out)
	}
	got := map[string]bool{}
	for _, r := range rel.Reloaded {
		got[r.Name] = r.OK
	}
	for _, name := range []string{"rest-tls", "token-file", "acl-policy", "internal-tls"} {
		if ok, present := got[name]; !present || !ok {
			t.Errorf("reloader %s: present %v ok %v in %s", name, present, ok, out)
		}
	}
	if code, out := ext("craig", e.extURL+"/whoami"); code != 200 || !strings.Contains(out, "craig") {
		t.Errorf("craig's token after the reload: %d %s", code, out)
	}
	if code, _ := ext("carol", e.extURL+"/whoami"); code != 401 {
		t.Errorf("carol's removed token after the reload: %d", code)
	}
	canSubmit := func(user string) bool {
		code, out := ext(user, "-X", "POST", "-H", "Content-Type: application/json", "--data", `{"verb": "submit", "resource": "jobs"}`, e.extURL+"/auth/can-i")
		return code == 200 && strings.Contains(out, `"allowed": true`)
	}
	if !canSubmit("craig") || canSubmit("alice") {
		t.Errorf("policy after the reload: craig may submit %v (want true), alice %v (want false)", canSubmit("craig"), canSubmit("alice"))
	}
	metric := func() string {
		_, out := ext("root", e.extURL+"/metrics")
		return regexp.MustCompile(`(?m)^sluice_config_last_reload_successful \S+$`).FindString(out)
	}
	if m := metric(); m != "sluice_config_last_reload_successful 1" {
		t.Errorf("metric after a good reload: %q", m)
	}
	if _, out := ext("root", e.extURL+"/metrics"); !regexp.MustCompile(`(?m)^sluice_config_last_reload_success_timestamp_seconds \d`).MatchString(out) {
		t.Error("no sluice_config_last_reload_success_timestamp_seconds after a good reload")
	}
	// A broken policy: reported per reloader, the others still reload,
	// the previous policy stays in force.
	os.WriteFile(policy, []byte("roles: [this is not a policy\n"), 0o600)
	code, out = ext("root", "-X", "POST", e.extURL+"/admin/reload")
	if code != 500 || !strings.Contains(out, `"name": "acl-policy"`) || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, "stays in force") {
		t.Errorf("reload with a broken policy: %d %s", code, out)
	}
	if !canSubmit("craig") {
		t.Error("a broken policy replaced the working one")
	}
	if m := metric(); m != "sluice_config_last_reload_successful 0" {
		t.Errorf("metric after a failed reload: %q", m)
	}
}

// TestRESTFailureLimiter: failed authentications are counted per listener
// and client address prefix, and a valid credential is never refused:
// after the limit, an address's bad tokens get 429 on that listener only,
// while its valid token and anonymous access still work; addresses of one
// configured IPv4 prefix share the counter; the limiter is a metric.
func TestRESTFailureLimiter(t *testing.T) {
	needTool(t, "curl")
	tokens := filepath.Join(t.TempDir(), "tokens")
	tok := newToken(t, tokens, "carol", "")
	c := &cluster{t: t}
	listeners := `[{name: one, address: "127.0.0.1:0", tls: false, authentication: [token, anonymous]}, {name: two, address: "127.0.0.1:0", tls: false, authentication: [token, anonymous]}]`
	c.jm = startProc(t, "jobmanager", "jobmanager", "--work-dir", t.TempDir(), "-D", "rest.listeners="+listeners,
		"-D", "security.rest.authentication.token.file="+tokens, "-D", "jobmanager.rpc.port=0",
		"-D", "jobmanager.bind-host=127.0.0.1", "-D", "security.rest.authentication.failures.max=3",
		"-D", "security.rest.authentication.failures.ipv4-prefix=24")
	c.waitJMStarted()
	one := "http://127.0.0.1:" + port(c.restURLs["one"])
	two := "http://127.0.0.1:" + port(c.restURLs["two"])
	from := func(addr, auth, url string) int {
		args := []string{"--interface", addr}
		if auth != "" {
			args = append(args, "-H", "Authorization: Bearer "+auth)
		}
		code, _ := curl(t, append(args, url+"/whoami")...)
		return code
	}
	for i := 0; i < 3; i++ {
		if code := from("127.0.0.1", "wrong", one); code != 401 {
			t.Fatalf("bad token %d: %d", i+1, code)
		}
	}
	if code := from("127.0.0.1", "wrong", one); code != 429 {
		t.Fatalf("bad token after the limit: %d, want 429", code)
	}
	// Never refused: a valid credential, and no credential where
	// anonymous is allowed, on this listener and the other.
	for _, url := range []string{one, two} {
		if code := from("127.0.0.1", tok, url); code != 200 {
			t.Errorf("valid token from the limited address on %s: %d", url, code)
		}
		if code := from("127.0.0.1", "", url); code != 200 {
			t.Errorf("anonymous from the limited address on %s: %d", url, code)
		}
	}
	// The other listener counts its own failures.
	if code := from("127.0.0.1", "wrong", two); code != 401 {
		t.Errorf("bad token on the other listener: %d, want 401", code)
	}
	// 127.0.0.2 is in the same /24: limited too; 127.0.1.1 is not.
	if code := from("127.0.0.2", "wrong", one); code != 429 {
		t.Errorf("bad token from the same /24: %d, want 429", code)
	}
	if code := from("127.0.1.1", "wrong", one); code != 401 {
		t.Errorf("bad token from another /24: %d, want 401", code)
	}
	_, metrics := curl(t, one+"/metrics")
	for _, want := range []string{
		`sluice_rest_authentication_limiter_blocked{listener="one"} 1`,
		`sluice_rest_authentication_limiter_entries{listener="one"} 2`,
		`sluice_rest_authentication_failures_limited_total{listener="one"} 2`,
		`sluice_rest_authentication_failures_total{listener="two"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "sluice_rest_authentication"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// issueWithUsage writes a certificate from the cluster CA with the given
// extended key usages.
func (p pki) issueWithUsage(t *testing.T, dir, name string, usage ...x509.ExtKeyUsage) (crt, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, k.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	crt, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	kd, _ := x509.MarshalECPrivateKey(k)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return crt, key
}

// TestRESTClientCertificates: the secured example trusts the cluster CA
// for REST client certificates, so the processes' own certificates would
// log in; they are refused unless a spiffe: mapping rule names them. A
// user certificate without the clientAuth usage is refused, and the CLI
// says which usage is missing.
func TestRESTClientCertificates(t *testing.T) {
	needTool(t, "curl")
	e := startRESTExample(t)
	for _, proc := range []string{"jobmanager", "taskmanager"} {
		pemFile := filepath.Join(e.dir, proc+".pem")
		code, body := curl(t, "--cacert", e.ca, "--cert", pemFile, "--key", pemFile, e.extURL+"/whoami")
		if code != 401 || !strings.Contains(body, "process identity spiffe://") || !strings.Contains(body, "principal-mapping-rules") {
			t.Errorf("%s certificate on REST: %d %s (want 401 naming the identity and the rules key)", proc, code, body)
		}
	}
	if code, body := curl(t, "--cacert", e.ca, "--cert", e.aliceCrt, "--key", e.aliceKey, e.extURL+"/whoami"); code != 200 || !strings.Contains(body, `"alice"`) {
		t.Errorf("user certificate: %d %s", code, body)
	}
	// The CLI and a server-only certificate.
	crt, key := loadPKI(t, e.dir).issueWithUsage(t, t.TempDir(), "dora", x509.ExtKeyUsageServerAuth)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, stderr, code := runSluice(ctx, t, "whoami", "--jobmanager", e.extURL, "--cacert", e.ca, "--cert", crt, "--key", key)
	if code == 0 || !strings.Contains(stderr, "no clientAuth extended key usage") || !strings.Contains(stderr, crt) || !strings.Contains(stderr, "serverAuth") {
		t.Errorf("certificate without clientAuth: exit %d, %q (want the missing usage named)", code, stderr)
	}

	// A rule written for the JobManager's identity lets it (only it) in.
	rules := `RULE:^spiffe:\/\/[^\/]+\/jobmanager$/jm-ops/,RULE:^CN=([^,]+),.*$/$1/`
	e2 := startRESTExample(t, "security.rest.authentication.x509.principal-mapping-rules="+rules)
	jm := filepath.Join(e2.dir, "jobmanager.pem")
	if code, body := curl(t, "--cacert", e2.ca, "--cert", jm, "--key", jm, e2.extURL+"/whoami"); code != 200 || !strings.Contains(body, `"jm-ops"`) {
		t.Errorf("jobmanager certificate with a rule naming it: %d %s", code, body)
	}
	tm := filepath.Join(e2.dir, "taskmanager.pem")
	if code, body := curl(t, "--cacert", e2.ca, "--cert", tm, "--key", tm, e2.extURL+"/whoami"); code != 401 {
		t.Errorf("taskmanager certificate, no rule naming it: %d %s", code, body)
	}
}

// TestRESTRedirectKeepsBasePath: a non-canonical path is redirected to
// its canonical form under rest.base-path, and under the prefix a trusted
// proxy forwards; an untrusted client's prefix is ignored.
func TestRESTRedirectKeepsBasePath(t *testing.T) {
	needTool(t, "curl")
	c := &cluster{t: t}
	c.jm = startProc(t, "jobmanager", "jobmanager", "--work-dir", t.TempDir(), "-D", "rest.base-path=/sluice",
		"-D", "rest.bind-address=127.0.0.1", "-D", "rest.port=0", "-D", "jobmanager.rpc.port=0", "-D", "jobmanager.bind-host=127.0.0.1",
		"-D", "rest.trusted-proxies=127.0.0.2")
	c.waitJMStarted()
	base := "http://127.0.0.1:" + port(c.restURLs["default"])
	location := func(path string, args ...string) (int, string) {
		code, out := curl(t, append([]string{"--path-as-is", "-i"}, append(args, base+path)...)...)
		m := regexp.MustCompile(`(?mi)^location: (\S+)`).FindStringSubmatch(out)
		if m == nil {
			return code, ""
		}
		return code, m[1]
	}
	for _, p := range []string{"/sluice//jobs", "/sluice/x/../jobs", "/sluice/./jobs", "/sluice/jobs/../jobs"} {
		if code, loc := location(p); code != 301 || loc != "/sluice/jobs" {
			t.Errorf("GET %s: %d Location %q, want 301 /sluice/jobs", p, code, loc)
		}
	}
	if code, loc := location("/sluice//jobs?x=1"); code != 301 || loc != "/sluice/jobs?x=1" {
		t.Errorf("query: %d %q", code, loc)
	}
	if code, loc := location("/sluice//jobs", "--interface", "127.0.0.2", "-H", "X-Forwarded-Prefix: /proxy"); code != 301 || loc != "/proxy/sluice/jobs" {
		t.Errorf("behind a trusted proxy: %d %q, want /proxy/sluice/jobs", code, loc)
	}
	if code, loc := location("/sluice//jobs", "-H", "X-Forwarded-Prefix: /evil"); code != 301 || loc != "/sluice/jobs" {
		t.Errorf("untrusted X-Forwarded-Prefix: %d %q", code, loc)
	}
	// Other methods keep their method: 308.
	if code, loc := location("/sluice//jobs", "-X", "POST"); code != 308 || loc != "/sluice/jobs" {
		t.Errorf("POST: %d %q, want 308 /sluice/jobs", code, loc)
	}
	if code, out := curl(t, base+"/sluice/jobs"); code != 200 || !strings.Contains(out, "jobs") {
		t.Errorf("canonical path: %d %s", code, out)
	}
}
