package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/test/kdc"
)

// kerberosEnv is a JobManager whose TLS listener accepts Kerberos
// (SPNEGO) and tokens, against a throwaway MIT realm.
type kerberosEnv struct {
	k        *kdc.KDC
	jm       *proc
	ca       string
	url      string // https://localhost:PORT, the kerberos listener
	ccache   string // alice's ticket cache, after kinit
	token    string // a token of the same user, alice
	policy   string
	keytab   string // HTTP/localhost
	tokens   string
	certsDir string
}

func startKerberosJM(t *testing.T) *kerberosEnv {
	t.Helper()
	needTool(t, "curl")
	e := &kerberosEnv{k: kdc.Start(t, kdc.Options{})}
	t.Setenv("KRB5_CONFIG", e.k.Krb5Conf)
	pw := e.k.AddPrincipal(t, "alice")
	e.k.AddPrincipal(t, "HTTP/localhost")
	e.keytab = e.k.Keytab(t, "HTTP/localhost")
	e.ccache = filepath.Join(t.TempDir(), "alice.ccache")
	e.k.Kinit(t, "alice", pw, e.ccache)
	t.Setenv("KRB5CCNAME", "FILE:"+e.ccache)

	e.certsDir = createCertsHosts(t, "localhost")
	e.ca = filepath.Join(e.certsDir, "ca.crt")
	e.tokens = filepath.Join(t.TempDir(), "tokens")
	e.token = newToken(t, e.tokens, "alice", "")
	e.policy = filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(e.policy, []byte(`roles:
  developer:
    - verbs: [submit]
      resources: [jobs]
    - verbs: [view]
      resources: [cluster, taskmanagers]
    - verbs: [read]
      resources: ["file:/srv/in/*"]
bindings:
  - role: developer
    users: [alice]
`), 0o600)

	conf := fmt.Sprintf(`rest.listeners:
  - name: local
    address: 127.0.0.1:0
    tls: false
    authentication: [anonymous]
  - name: external
    address: 127.0.0.1:0
    tls: true
    client-auth: none
    authentication: [kerberos, token]
security.ssl.rest.keystore: %s
security.rest.authentication.token.file: %s
security.rest.authentication.kerberos.keytab: %s
security.rest.authentication.kerberos.principal: HTTP/localhost@%s
security.kerberos.krb5-conf.path: %s
security.authorization.mode: acl
security.authorization.acl.policy-file: %s
`, filepath.Join(e.certsDir, "rest.pem"), e.tokens, e.keytab, e.k.Realm, e.k.Krb5Conf, e.policy)
	confFile := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(confFile, []byte(conf), 0o600)
	e.jm = startProc(t, "jobmanager", "jobmanager", "--config", confFile, "--work-dir", t.TempDir(),
		"-D", "jobmanager.rpc.address=127.0.0.1", "-D", "jobmanager.bind-host=127.0.0.1", "-D", "jobmanager.rpc.port=0")
	jc := &cluster{t: t, jm: e.jm}
	jc.waitJMStarted()
	e.url = "https://localhost:" + port(jc.restURLs["external"])
	local := port(jc.restURLs["local"])
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := curl(t, "http://127.0.0.1:"+local+"/whoami"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the JobManager did not start:\n%s", e.jm.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return e
}

// curlEnv is curl with extra environment (a ticket cache or none).
func curlEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "-w", "\n%{http_code}"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndex(s, "\n")
	code := 0
	fmt.Sscan(s[i+1:], &code)
	return code, s[:max(i, 0)]
}

// TestKerberosREST: SPNEGO on a TLS listener with clients we did not
// write (curl with GSS-API) and the sluice CLI; the Kerberos user is the
// same user for authorization as through a token.
func TestKerberosREST(t *testing.T) {
	e := startKerberosJM(t)

	t.Run("curl --negotiate", func(t *testing.T) {
		code, body := curlEnv(t, nil, "--negotiate", "-u", ":", "--cacert", e.ca, e.url+"/whoami")
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		who := whoamiOf(t, body)
		if who["username"] != "alice" || who["method"] != "kerberos" || who["listener"] != "external" {
			t.Fatalf("whoami %v", who)
		}
	})
	t.Run("no ticket", func(t *testing.T) {
		code, body := curlEnv(t, []string{"KRB5CCNAME=FILE:" + filepath.Join(t.TempDir(), "none")},
			"-i", "--negotiate", "-u", ":", "--cacert", e.ca, e.url+"/whoami")
		if code != 401 || !strings.Contains(strings.ToLower(body), "www-authenticate: negotiate") {
			t.Fatalf("status %d: %s", code, body)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Run("sluice --kerberos list", func(t *testing.T) {
		for _, args := range [][]string{
			{"--kerberos", "list", "--jobmanager", e.url, "--cacert", e.ca},
			{"list", "--kerberos", "--jobmanager", e.url, "--cacert", e.ca},
		} {
			out, stderr, code := runSluice(ctx, t, args...)
			if code != 0 {
				t.Fatalf("sluice %v: %d %s %s", args, code, out, stderr)
			}
		}
		out, stderr, code := runSluice(ctx, t, "whoami", "--kerberos", "--jobmanager", e.url, "--cacert", e.ca)
		if code != 0 || !strings.Contains(out, "alice") {
			t.Fatalf("whoami: %d %s %s", code, out, stderr)
		}
	})
	t.Run("sluice --kerberos without a ticket says kinit", func(t *testing.T) {
		t.Setenv("KRB5CCNAME", filepath.Join(t.TempDir(), "none"))
		_, stderr, code := runSluice(ctx, t, "list", "--kerberos", "--jobmanager", e.url, "--cacert", e.ca)
		if code == 0 || !strings.Contains(stderr, "run kinit") {
			t.Fatalf("%d %s", code, stderr)
		}
	})
	t.Run("same decisions via kerberos and token", func(t *testing.T) {
		pairs := [][2]string{{"submit", "jobs"}, {"view", "cluster"}, {"cancel", "job/0123"}, {"admin", "admin"},
			{"read", "file:/srv/in/a"}, {"write", "file:/srv/in/a"}}
		allowed := 0
		for _, p := range pairs {
			kOut, kErr, kCode := runSluice(ctx, t, "auth", "can-i", p[0], p[1], "--kerberos", "--jobmanager", e.url, "--cacert", e.ca)
			tOut, tErr, tCode := runSluice(ctx, t, "auth", "can-i", p[0], p[1], "--token", e.token, "--jobmanager", e.url, "--cacert", e.ca)
			if kCode != tCode || kOut != tOut {
				t.Errorf("can-i %s %s: kerberos %d %q %s, token %d %q %s", p[0], p[1], kCode, kOut, kErr, tCode, tOut, tErr)
			}
			if kCode == 0 {
				allowed++
			}
		}
		if allowed == 0 || allowed == len(pairs) {
			t.Errorf("%d of %d allowed: the pairs do not exercise both answers", allowed, len(pairs))
		}
	})
}

// TestSecurityCheck: `sluice security check` passes on a good setup and
// catches each broken piece with its fix and a non-zero exit.
func TestSecurityCheck(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	k.AddPrincipal(t, "sluice")
	k.AddPrincipal(t, "HTTP/localhost")
	kt := k.Keytab(t, "sluice")
	restKT := k.Keytab(t, "HTTP/localhost")
	certs := createCertsHosts(t, "localhost")
	base := []string{
		"security.kerberos.krb5-conf.path=" + k.Krb5Conf,
		"security.kerberos.login.keytab=" + kt,
		"security.kerberos.login.principal=sluice@" + k.Realm,
		"security.rest.authentication.kerberos.keytab=" + restKT,
		"security.rest.authentication.kerberos.principal=HTTP/localhost@" + k.Realm,
		"security.ssl.rest.keystore=" + filepath.Join(certs, "rest.pem"),
		"security.ssl.rest.truststore=" + filepath.Join(certs, "ca.crt"),
	}
	empty := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(empty, nil, 0o600)
	check := func(t *testing.T, defines ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args := []string{"security", "check", "--config", empty}
		for _, d := range append(append([]string{}, base...), defines...) {
			args = append(args, "-D", d)
		}
		out, stderr, code := runSluice(ctx, t, args...)
		return out + stderr, code
	}

	t.Run("all good", func(t *testing.T) {
		out, code := check(t)
		if code != 0 || strings.Contains(out, "[FAIL]") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{"TGT obtained for sluice@", "clock agrees with the KDC", "aes256-cts-hmac-sha1-96",
			"holds the issuer", "[SKIP] internal TLS"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	loose := k.Keytab(t, "sluice")
	os.Chmod(loose, 0o644)
	other := k.Keytab(t, "HTTP/localhost")
	expired := expiredCert(t)
	tests := []struct {
		name    string
		defines []string
		stop    bool
		want    []string
	}{
		{name: "insecure keytab permissions", defines: []string{"security.kerberos.login.keytab=" + loose},
			want: []string{"has mode 0644: group or others can read it", "-> fix: chmod 600 " + loose}},
		{name: "principal missing from the keytab", defines: []string{"security.kerberos.login.keytab=" + other},
			want: []string{"holds no key for sluice@" + k.Realm, "-> fix: export the principal's key: kadmin -q \"ktadd -k " + other}},
		{name: "expired certificate", defines: []string{"security.ssl.internal.keystore=" + expired, "security.ssl.internal.truststore=" + expired},
			want: []string{"expired on", "-> fix: renew it"}},
		{name: "unreachable KDC", stop: true,
			want: []string{"KDC of realm " + k.Realm + " not reachable", "-> fix: start the KDC"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stop {
				k.Stop()
			}
			out, code := check(t, tc.defines...)
			if code == 0 {
				t.Errorf("exit 0:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// expiredCert writes a self-signed certificate and key (one PEM file)
// that expired yesterday.
func expiredCert(t *testing.T) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "expired"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(t.TempDir(), "expired.pem")
	os.WriteFile(path, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})...), 0o600)
	return path
}

// TestKerberosLoginService: the JobManager logs in from a keytab, or from
// the ticket cache kinit filled, and says when its credentials stop
// working (/overview field, metric, and for a ticket cache a warning).
func TestKerberosLoginService(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	k.AddPrincipal(t, "sluice/jobmanager")
	keytab := k.Keytab(t, "sluice/jobmanager")
	principal := "sluice/jobmanager@" + k.Realm
	for _, mode := range []string{"keytab", "ticket-cache"} {
		t.Run(mode, func(t *testing.T) {
			defines := []string{"security.kerberos.krb5-conf.path=" + k.Krb5Conf, "security.kerberos.login.principal=" + principal,
				"security.kerberos.login.contexts=KafkaClient"}
			if mode == "keytab" {
				defines = append(defines, "security.kerberos.login.keytab="+keytab)
			} else {
				pw := k.AddPrincipal(t, "carol")
				ccache := filepath.Join(t.TempDir(), "ccache")
				k.Kinit(t, "carol", pw, ccache)
				t.Setenv("KRB5CCNAME", "FILE:"+ccache)
				defines = []string{"security.kerberos.krb5-conf.path=" + k.Krb5Conf, "security.kerberos.login.use-ticket-cache=true",
					"security.kerberos.login.contexts=KafkaClient"}
				principal = "carol@" + k.Realm
			}
			c := startCluster(t, 1, 1, defines...)
			var o map[string]any
			if err := c.get("/overview", &o); err != nil {
				t.Fatal(err)
			}
			kr, ok := o["kerberos"].(map[string]any)
			if !ok || kr["principal"] != principal || kr["source"] != mode || kr["expires-in-seconds"].(float64) <= 0 {
				t.Fatalf("/overview kerberos = %v", o["kerberos"])
			}
			if body := httpGet(t, c.restURL+"/metrics"); !strings.Contains(body, "sluice_kerberos_tgt_expiry_timestamp_seconds") {
				t.Error("no Kerberos expiry metric")
			}
			if mode == "ticket-cache" && !strings.Contains(c.jm.Log(), "stops reaching Kerberos-secured systems when the ticket expires") {
				t.Error("a ticket-cache-only login does not say when the cluster stops working")
			}
		})
	}
}
