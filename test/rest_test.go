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
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// issueUser writes name.crt and name.key: a client certificate from the
// cluster CA for subject.
func (p pki) issueUser(t *testing.T, dir, name string, subject pkix.Name) (crt, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
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

// restEnv is a JobManager serving examples/rest-listeners.yaml.
type restEnv struct {
	c                  *cluster
	dir                string
	ca                 string
	localURL, extURL   string
	aliceCrt, aliceKey string
	token              string
	tokens             string
}

func newToken(t *testing.T, file, user, groups string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, code := runSluice(ctx, t, "token", "create", "--user", user, "--groups", groups, "--file", file)
	if code != 0 {
		t.Fatalf("token create: %s", stderr)
	}
	tok := strings.TrimSpace(out)
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), tok) {
		t.Fatal("the token file holds the token itself, not its hash")
	}
	return tok
}

// startRESTExample starts a JobManager (and one TM) with the shipped
// two-listener example, its paths and ports rewritten for the test.
func startRESTExample(t *testing.T, extra ...string) *restEnv {
	t.Helper()
	e := &restEnv{dir: createCertsHosts(t, "localhost")}
	e.ca = filepath.Join(e.dir, "ca.crt")
	e.tokens = filepath.Join(t.TempDir(), "tokens")
	e.token = newToken(t, e.tokens, "bob", "ops,eng")
	e.aliceCrt, e.aliceKey = loadPKI(t, e.dir).issueUser(t, t.TempDir(), "alice", pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"acme"}})
	example, err := os.ReadFile(filepath.Join(repoRoot(t), "examples/rest-listeners.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Port 0: the JobManager picks free ports and the test reads them from
	// its log (see waitJMStarted).
	conf := strings.NewReplacer(
		"127.0.0.1:8081", "127.0.0.1:0",
		"0.0.0.0:8443", "0.0.0.0:0",
		"/etc/sluice/certs", e.dir,
		"/etc/sluice/tokens", e.tokens,
	).Replace(string(example))
	confFile := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(confFile, []byte(conf), 0o644)
	c := &cluster{t: t}
	c.defines = append([]string{"jobmanager.rpc.address=127.0.0.1", "jobmanager.bind-host=127.0.0.1",
		"jobmanager.rpc.port=0", "taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1"}, extra...)
	c.jm = startProc(t, "jobmanager", append([]string{"jobmanager", "--config", confFile, "--work-dir", t.TempDir()}, defineArgs(c.defines)...)...)
	c.waitJMStarted()
	e.localURL = c.restURLs["local"]
	e.extURL = "https://localhost:" + port(c.restURLs["external"])
	c.restURL = e.localURL
	c.addTM()
	// Readiness from the log: the REST API may deny everything on purpose.
	c.waitFor(30*time.Second, "taskmanager registered", func() bool {
		return strings.Contains(c.jm.Log(), "taskmanager registered")
	})
	e.c = c
	return e
}

func createCertsHosts(t *testing.T, hosts string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, code := runSluice(ctx, t, "security", "create-certs", "--out", dir, "--hosts", hosts); code != 0 {
		t.Fatalf("create-certs: %s", stderr)
	}
	return dir
}

// curl runs curl and returns the HTTP status and the body (and headers
// when -i is among args).
func curl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", append([]string{"-sS", "-w", "\n%{http_code}"}, args...)...).CombinedOutput()
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndex(s, "\n")
	code := 0
	fmt.Sscan(s[i+1:], &code)
	if err != nil && code == 0 {
		return 0, s
	}
	return code, s[:max(i, 0)]
}

func whoamiOf(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("whoami body %q: %v", body, err)
	}
	return m
}

// TestRESTListeners: the shipped example's two listeners served at once;
// real HTTPS clients (curl and sluice) for each method, admitted and refused.
func TestRESTListeners(t *testing.T) {
	needTool(t, "curl")
	e := startRESTExample(t)
	ext := e.extURL

	// Plaintext loopback listener: anonymous.
	code, body := curl(t, e.localURL+"/whoami")
	if code != 200 || whoamiOf(t, body)["username"] != "system:anonymous" {
		t.Fatalf("local listener: %d %s", code, body)
	}
	// TLS listener: client certificate -> alice, groups from OU and O.
	code, body = curl(t, "--cacert", e.ca, "--cert", e.aliceCrt, "--key", e.aliceKey, ext+"/whoami")
	w := whoamiOf(t, body)
	if code != 200 || w["username"] != "alice" || w["method"] != "x509" || !strings.Contains(fmt.Sprint(w["groups"]), "eng") || !strings.Contains(fmt.Sprint(w["groups"]), "acme") {
		t.Fatalf("x509: %d %s", code, body)
	}
	// HSTS on the TLS listener.
	if code, body := curl(t, "-i", "--cacert", e.ca, "--cert", e.aliceCrt, "--key", e.aliceKey, ext+"/whoami"); code != 200 || !strings.Contains(strings.ToLower(body), "strict-transport-security:") {
		t.Errorf("no HSTS header on the TLS listener: %d %s", code, body)
	}
	// A client certificate from a CA the listener does not trust is refused.
	stranger := loadPKI(t, createCertsHosts(t, "localhost"))
	mCrt, mKey := stranger.issueUser(t, t.TempDir(), "mallory", pkix.Name{CommonName: "alice"})
	if code, body := curl(t, "--cacert", e.ca, "--cert", mCrt, "--key", mKey, ext+"/whoami"); code == 200 {
		t.Fatalf("certificate from an untrusted CA admitted: %s", body)
	}
	// Bearer token -> bob.
	code, body = curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+e.token, ext+"/whoami")
	w = whoamiOf(t, body)
	if code != 200 || w["username"] != "bob" || w["method"] != "token" || !strings.Contains(fmt.Sprint(w["groups"]), "ops") {
		t.Fatalf("token: %d %s", code, body)
	}
	// An unknown token is a 401.
	code, body = curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer sluice_not-a-real-token", ext+"/whoami")
	if code != 401 || strings.Contains(body, "not-a-real-token") {
		t.Fatalf("unknown token: %d %s", code, body)
	}
	// No credential: 401 with one challenge per method offered.
	code, body = curl(t, "-i", "--cacert", e.ca, ext+"/whoami")
	if code != 401 || strings.Count(strings.ToLower(body), "www-authenticate:") != 2 || !strings.Contains(body, "Bearer") {
		t.Fatalf("no credential: %d %s", code, body)
	}
	// Plain HTTP to the TLS listener is refused cleanly.
	code, body = curl(t, strings.Replace(ext, "https://", "http://", 1)+"/whoami")
	if code != 400 || !strings.Contains(body, "HTTPS") {
		t.Fatalf("plaintext to TLS listener: %d %s", code, body)
	}
	// The token never reached a log line.
	if strings.Contains(e.c.jm.Log(), e.token) {
		t.Fatal("the JobManager logged a bearer token")
	}

	// Our CLI, as a user runs it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, code := runSluice(ctx, t, "whoami", "--jobmanager", ext, "--cacert", e.ca, "--token", e.token)
	if code != 0 || !strings.Contains(out, "bob") {
		t.Fatalf("sluice whoami --token: %d %s %s", code, out, stderr)
	}
	out, stderr, code = runSluice(ctx, t, "whoami", "--jobmanager", ext, "--cacert", e.ca, "--cert", e.aliceCrt, "--key", e.aliceKey)
	if code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("sluice whoami --cert: %d %s %s", code, out, stderr)
	}
	_, stderr, code = runSluice(ctx, t, "whoami", "--jobmanager", ext, "--token", e.token)
	if code == 0 || !strings.Contains(stderr, "--cacert") {
		t.Errorf("untrusted server: exit %d, %q (want a hint to --cacert)", code, stderr)
	}
	_, stderr, code = runSluice(ctx, t, "whoami", "--jobmanager", strings.Replace(ext, "localhost", "127.0.0.1", 1), "--cacert", e.ca, "--token", e.token)
	if code == 0 || !strings.Contains(stderr, "localhost") {
		t.Errorf("hostname mismatch: exit %d, %q (want the names in the certificate)", code, stderr)
	}
	_, stderr, code = runSluice(ctx, t, "whoami", "--jobmanager", ext, "--cacert", e.ca)
	if code == 0 || !strings.Contains(stderr, "token") || !strings.Contains(stderr, "x509") {
		t.Errorf("401: exit %d, %q (want the methods offered)", code, stderr)
	}
	// A job submitted over the authenticated listener runs.
	input := writeSample(t)
	outDir := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := runSluice(ctx, t, "run", "examples/wordcount.yaml", "--jobmanager", ext, "--cacert", e.ca, "--token", e.token,
		"--param", "input="+input, "--param", "output="+outDir)
	if code != 0 {
		t.Fatalf("run over https: %s %s", stdout, stderr)
	}
	equalLines(t, readParts(t, outDir), referenceCounts(t, input))
}

// TestRESTFailedAuthLimit: repeated failed authentications from one address
// get 429 with Retry-After; a bad credential is a 401 even where anonymous
// is allowed.
func TestRESTFailedAuthLimit(t *testing.T) {
	needTool(t, "curl")
	dir := createCertsHosts(t, "localhost")
	tokens := filepath.Join(t.TempDir(), "tokens")
	tok := newToken(t, tokens, "carol", "")
	c := &cluster{t: t}
	listeners := `[{name: open, address: "127.0.0.1:0", tls: false, authentication: [token, anonymous]}]`
	c.jm = startProc(t, "jobmanager", "jobmanager", "--work-dir", t.TempDir(), "-D", "rest.listeners="+listeners,
		"-D", "security.rest.authentication.token.file="+tokens, "-D", "jobmanager.rpc.port=0",
		"-D", "jobmanager.bind-host=127.0.0.1", "-D", "security.rest.authentication.failures.max=3",
		"-D", "security.ssl.rest.keystore="+filepath.Join(dir, "rest.pem"))
	c.waitJMStarted()
	c.restURL = c.restURLs["open"]
	if code, body := curl(t, c.restURL+"/whoami"); code != 200 || !strings.Contains(body, "system:anonymous") {
		t.Fatalf("anonymous: %d %s", code, body)
	}
	if code, body := curl(t, "-H", "Authorization: Bearer "+tok, c.restURL+"/whoami"); code != 200 || !strings.Contains(body, "carol") {
		t.Fatalf("token: %d %s", code, body)
	}
	for i := 0; i < 3; i++ {
		if code, body := curl(t, "-H", "Authorization: Bearer wrong", c.restURL+"/whoami"); code != 401 {
			t.Fatalf("bad token where anonymous is allowed: %d %s", code, body)
		}
	}
	code, body := curl(t, "-i", "-H", "Authorization: Bearer wrong", c.restURL+"/whoami")
	if code != 429 || !strings.Contains(strings.ToLower(body), "retry-after:") {
		t.Fatalf("after 3 failures: %d %s", code, body)
	}
}

func nginxPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx is required in CI (make deps installs it)")
	}
	t.Skip("nginx not installed")
	return ""
}

// TestRESTBehindNginx: nginx proxies HTTPS to the TLS listener under a
// path prefix, trusting the sluice CA (proxy_ssl_trusted_certificate), as
// YARN's proxy must trust Flink's CA. The JobManager believes the proxy's
// X-Forwarded-Prefix because it is in rest.trusted-proxies.
func TestRESTBehindNginx(t *testing.T) {
	nginx := nginxPath(t)
	needTool(t, "curl")
	// nginx connects from 127.0.0.2, the only trusted proxy address; a
	// client on 127.0.0.1 sending the same headers is not believed.
	e := startRESTExample(t, "rest.trusted-proxies=127.0.0.2")
	dir := t.TempDir()
	port := freePort(t)
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
    listen 127.0.0.1:%[2]d;
    location /sluice/ {
      proxy_pass %[3]s/;
      proxy_bind 127.0.0.2;
      proxy_ssl_trusted_certificate %[4]s;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_server_name on;
      proxy_set_header X-Forwarded-Prefix /sluice;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
    location /untrusted/ {
      proxy_pass %[3]s/;
      proxy_ssl_trusted_certificate %[5]s;
      proxy_ssl_verify on;
      proxy_ssl_session_reuse off;  # else the other location's verified session is resumed
      proxy_ssl_name localhost;
      proxy_ssl_protocols TLSv1.3;
    }
  }
}
`, dir, port, e.extURL, e.ca, filepath.Join(createCertsHosts(t, "localhost"), "ca.crt"))
	cf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(cf, []byte(conf), 0o644)
	p := exec.Command(nginx, "-p", dir, "-c", cf)
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	p.Stdout, p.Stderr = out, out
	// nginx forks workers that run as nobody: kill the whole group, not the master alone.
	inOwnGroup(p)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killGroup(p, syscall.SIGKILL); p.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := curl(t, base+"/sluice/config")
		if code != 0 && code != 502 {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not come up (last answer %d %s): %s", code, body, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	code, body := curl(t, "-H", "Authorization: Bearer "+e.token, base+"/sluice/whoami")
	if code != 200 || whoamiOf(t, body)["username"] != "bob" {
		t.Fatalf("whoami through nginx: %d %s", code, body)
	}
	code, body = curl(t, "-H", "Authorization: Bearer "+e.token, base+"/sluice/config")
	if code != 200 || !strings.Contains(body, `"base-path": "/sluice"`) {
		t.Fatalf("X-Forwarded-Prefix from a trusted proxy not applied: %d %s", code, body)
	}
	code, body = curl(t, base+"/sluice/overview")
	if code != 401 {
		t.Fatalf("no credential through nginx: %d %s", code, body)
	}
	// A proxy that does not trust the sluice CA refuses to forward.
	if code, body := curl(t, "-H", "Authorization: Bearer "+e.token, base+"/untrusted/whoami"); code != 502 {
		t.Fatalf("proxy with the wrong CA: %d %s", code, body)
	}
	// The same headers sent directly (not from a trusted proxy) are ignored.
	code, body = curl(t, "--cacert", e.ca, "-H", "Authorization: Bearer "+e.token, "-H", "X-Forwarded-Prefix: /evil", e.extURL+"/config")
	if code != 200 || strings.Contains(body, "/evil") {
		t.Fatalf("untrusted X-Forwarded-Prefix believed: %d %s", code, body)
	}
}
