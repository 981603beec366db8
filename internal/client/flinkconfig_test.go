package client

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestConfigLayerStores: the client reads Flink's security.ssl.rest.*
// trust and key stores in each format, and the REST address, and talks to
// a real TLS server with them (client certificate required).
func TestConfigLayerStores(t *testing.T) {
	ca := newTestCA(t, "rest-ca")
	srvCert, _, _ := ca.issue(t, leafOpts{cn: "jm", ips: []net.IP{net.ParseIP("127.0.0.1")}})
	cliCert, _, _ := ca.issue(t, leafOpts{cn: "alice", client: true})
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := startTLS(t, srvCert, pool)
	u, _ := url.Parse(srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)

	dir := t.TempDir()
	p12Trust, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{ca.cert}, "tpw")
	if err != nil {
		t.Fatal(err)
	}
	ks := keystore.New()
	if err := ks.SetTrustedCertificateEntry("ca", keystore.TrustedCertificateEntry{
		CreationTime: time.Now(), Certificate: keystore.Certificate{Type: "X509", Content: ca.cert.Raw}}); err != nil {
		t.Fatal(err)
	}
	jksPath := dir + "/trust.jks"
	f, err := os.Create(jksPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Store(f, []byte("jpw")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p12Key, err := pkcs12.Modern.Encode(cliCert.PrivateKey, mustLeaf(t, cliCert.Certificate[0]), nil, "kpw")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := writeFile(t, dir, "client.p12", p12Key)

	for name, trust := range map[string][]string{
		"PEM":    {"security.ssl.rest.truststore=" + writeFile(t, dir, "ca.pem", ca.pem)},
		"PKCS12": {"security.ssl.rest.truststore=" + writeFile(t, dir, "trust.p12", p12Trust), "security.ssl.rest.truststore-password=tpw"},
		"JKS":    {"security.ssl.rest.truststore=" + jksPath, "security.ssl.rest.truststore-password=jpw"},
	} {
		t.Run(name, func(t *testing.T) {
			defines := append([]string{
				"rest.address=" + host, "rest.port=" + port, "security.ssl.rest.enabled=true",
				"security.ssl.rest.authentication-enabled=true",
				"security.ssl.rest.keystore=" + keyPath, "security.ssl.rest.keystore-password=kpw",
			}, trust...)
			cfg, err := config.Load("", defines)
			if err != nil {
				t.Fatal(err)
			}
			layer, err := LayerFromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Resolve(Settings{Config: layer}, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			if r.Options.URL != "https://"+u.Host {
				t.Errorf("URL = %q, want https://%s", r.Options.URL, u.Host)
			}
			c, err := NewWithOptions(r.Options)
			if err != nil {
				t.Fatal(err)
			}
			who, err := c.WhoAmI(context.Background())
			if err != nil {
				t.Fatalf("whoami over the configured stores: %v", err)
			}
			if who.Username != "alice" {
				t.Errorf("server saw %q, want the keystore's alice", who.Username)
			}
		})
	}

	// A flag wins over the configuration's address, and the
	// configuration's keystore is not sent to another JobManager.
	cfg, _ := config.Load("", []string{"rest.address=127.0.0.1", "rest.port=1",
		"security.ssl.rest.authentication-enabled=true", "security.ssl.rest.keystore=" + keyPath,
		"security.ssl.rest.keystore-password=kpw", "security.ssl.rest.truststore=" + writeFile(t, dir, "ca2.pem", ca.pem)})
	layer, err := LayerFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Resolve(Settings{Config: layer, JobManager: "https://other.example:8443"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if r.Options.URL != "https://other.example:8443" || r.Options.Certificate != nil {
		t.Errorf("flag did not win or the keystore went elsewhere: %v cert=%v", r.Options.URL, r.Options.Certificate != nil)
	}

	// A wrong store password names the key.
	cfg, _ = config.Load("", []string{"security.ssl.rest.truststore=" + dir + "/trust.p12", "security.ssl.rest.truststore-password=wrong"})
	if _, err := LayerFromConfig(cfg); err == nil || !strings.Contains(err.Error(), "security.ssl.rest.truststore") {
		t.Errorf("wrong password: %v", err)
	}
}

// TestVerifyHostnameFalse: security.ssl.verify-hostname: false accepts a
// server certificate that does not name the host, but still checks its CA.
func TestVerifyHostnameFalse(t *testing.T) {
	ca := newTestCA(t, "rest-ca")
	srvCert, _, _ := ca.issue(t, leafOpts{cn: "jm", dns: []string{"jm.example"}})
	srv := startTLS(t, srvCert, nil)
	dir := t.TempDir()
	caPath := writeFile(t, dir, "ca.pem", ca.pem)
	for _, verify := range []bool{true, false} {
		o := Options{URL: srv.URL, CACert: caPath, SkipHostnameCheck: !verify, Token: testToken}
		c, err := NewWithOptions(o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WhoAmI(context.Background())
		if verify && err == nil {
			t.Error("host name not checked with verify-hostname true")
		}
		if !verify && err != nil {
			t.Errorf("verify-hostname false: %v", err)
		}
	}
	other := newTestCA(t, "other")
	c, _ := NewWithOptions(Options{URL: srv.URL, CACert: writeFile(t, dir, "other.pem", other.pem), SkipHostnameCheck: true, Token: testToken})
	if _, err := c.WhoAmI(context.Background()); err == nil {
		t.Error("verify-hostname false accepted an unknown CA")
	}
}

func mustLeaf(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRetryRefusedConnection: a command run before the JobManager listens
// waits for it (Flink's rest.retry.*), resending the request body.
func TestRetryRefusedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused until the server below starts
	got := make(chan string, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // the server comes up later, as after `sluice jobmanager &`
		l2, err := net.Listen("tcp", addr)
		if err != nil {
			got <- "listen: " + err.Error()
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- string(b)
			w.Write([]byte(`{"allowed":true}`))
		})}
		t.Cleanup(func() { srv.Close() })
		srv.Serve(l2)
	}()
	c, err := NewWithOptions(Options{URL: "http://" + addr, RetryAttempts: 50, RetryDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := c.CanI(context.Background(), "submit", "jobs")
	if err != nil || !ok {
		t.Fatalf("after retries: %v %v", ok, err)
	}
	if b := <-got; !strings.Contains(b, `"verb":"submit"`) {
		t.Errorf("body on retry = %q", b)
	}
	// Without retries, a refused connection fails at once.
	c, _ = NewWithOptions(Options{URL: "http://127.0.0.1:1"})
	if _, _, err := c.CanI(context.Background(), "submit", "jobs"); err == nil || !strings.Contains(err.Error(), "cannot reach the JobManager") {
		t.Errorf("no retries: %v", err)
	}
}
