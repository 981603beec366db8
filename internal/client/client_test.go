package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const testToken = "s3cr3t-t0ken-value"

// whoamiHandler answers GET /whoami with the client certificate's CN or,
// for the test token, "tok-user"; anything else gets a 401.
func whoamiHandler(w http.ResponseWriter, r *http.Request) {
	user, method := "", ""
	switch {
	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		user, method = r.TLS.PeerCertificates[0].Subject.CommonName, "x509"
	case r.Header.Get("Authorization") == "Bearer "+testToken:
		user, method = "tok-user", "token"
	default:
		w.Header().Add("WWW-Authenticate", `Bearer realm="sluice"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"username": user, "groups": []string{"eng", "acme"}, "method": method})
}

// startTLS starts an https server with cert; clientCAs, when set, makes
// it require a client certificate they signed.
func startTLS(t *testing.T, cert tls.Certificate, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(whoamiHandler))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point of these tests
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func startPlain(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(srv.Close)
	return srv
}

// checkErr fails unless err contains every want (or is nil when want is
// empty), and never the token.
func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\n  does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q leaks the token", err)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	otherCA := newTestCA(t, "other CA")
	caFile := writeFile(t, dir, "ca.crt", ca.pem)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)

	loopback := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	good, _, _ := ca.issue(t, leafOpts{cn: "jm", dns: []string{"localhost"}, ips: loopback})
	other, _, _ := ca.issue(t, leafOpts{cn: "jm", dns: []string{"other.example"}})
	expired, _, _ := ca.issue(t, leafOpts{cn: "jm", ips: loopback, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	_, aliceCert, aliceKey := ca.issue(t, leafOpts{cn: "alice", client: true})
	_, malloryCert, malloryKey := otherCA.issue(t, leafOpts{cn: "mallory", client: true})
	certFile := writeFile(t, dir, "alice.crt", aliceCert)
	keyFile := writeFile(t, dir, "alice.key", aliceKey)
	bothFile := writeFile(t, dir, "alice.pem", append(append([]byte{}, aliceCert...), aliceKey...))
	malloryFile := writeFile(t, dir, "mallory.pem", append(append([]byte{}, malloryCert...), malloryKey...))
	_, serverOnlyCert, serverOnlyKey := ca.issue(t, leafOpts{cn: "bob"}) // serverAuth only
	serverOnlyFile := writeFile(t, dir, "bob.pem", append(append([]byte{}, serverOnlyCert...), serverOnlyKey...))

	goodSrv := startTLS(t, good, nil)
	otherSrv := startTLS(t, other, nil)
	expiredSrv := startTLS(t, expired, nil)
	mtlsSrv := startTLS(t, good, pool)

	tests := []struct {
		name     string
		srv      *httptest.Server
		opts     Options
		wantUser string
		wantErr  []string
	}{
		{name: "trusted via cacert", srv: goodSrv, opts: Options{CACert: caFile, Token: testToken}, wantUser: "tok-user"},
		{name: "untrusted", srv: goodSrv, wantErr: []string{
			"the JobManager's certificate at " + goodSrv.URL + " is not trusted (signed by an unknown authority): pass --cacert with the CA that signed it, or set cacert in your context"}},
		{name: "hostname mismatch", srv: otherSrv, opts: Options{CACert: caFile}, wantErr: []string{
			"the JobManager's certificate is valid for other.example, not 127.0.0.1: use one of those names in --jobmanager"}},
		{name: "server name override", srv: otherSrv, opts: Options{CACert: caFile, ServerName: "other.example", Token: testToken}, wantUser: "tok-user"},
		{name: "expired", srv: expiredSrv, opts: Options{CACert: caFile}, wantErr: []string{
			"certificate at " + expiredSrv.URL + " expired on " + expired.Leaf.NotAfter.UTC().Format(time.RFC3339)}},
		{name: "client certificate and key", srv: mtlsSrv, opts: Options{CACert: caFile, Cert: certFile, Key: keyFile}, wantUser: "alice"},
		{name: "client certificate with key in the same file", srv: mtlsSrv, opts: Options{CACert: caFile, Cert: bothFile}, wantUser: "alice"},
		{name: "client certificate missing", srv: mtlsSrv, opts: Options{CACert: caFile}, wantErr: []string{"requires a client certificate", "--cert"}},
		{name: "client certificate of another CA", srv: mtlsSrv, opts: Options{CACert: caFile, Cert: malloryFile}, wantErr: []string{"the JobManager at " + mtlsSrv.URL + " refused your client certificate"}},
		{name: "client certificate without clientAuth", srv: mtlsSrv, opts: Options{CACert: caFile, Cert: serverOnlyFile}, wantErr: []string{
			"refused your client certificate (bad certificate): your client certificate " + serverOnlyFile + " (CN=bob) has no clientAuth extended key usage (it has serverAuth)", "reissue"}},
		{name: "https to a plaintext port", srv: startPlain(t, whoamiHandler), wantErr: []string{"does not speak TLS (first bytes look like HTTP): use http://"}},
		{name: "http to a TLS port", srv: goodSrv, opts: Options{URL: strings.Replace(goodSrv.URL, "https://", "http://", 1)}, wantErr: []string{
			"the JobManager at http://" + strings.TrimPrefix(goodSrv.URL, "https://") + " speaks TLS: use https://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.URL == "" {
				tt.opts.URL = "https://" + strings.TrimPrefix(strings.TrimPrefix(tt.srv.URL, "https://"), "http://")
			}
			c, err := NewWithOptions(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			id, err := c.WhoAmI(context.Background())
			checkErr(t, err, tt.wantErr)
			if err == nil && id.Username != tt.wantUser {
				t.Errorf("user %q, want %q", id.Username, tt.wantUser)
			}
		})
	}
}

// TestTLSVersion checks that the client refuses TLS 1.1.
func TestTLSVersion(t *testing.T) {
	ca := newTestCA(t, "test CA")
	cert, _, _ := ca.issue(t, leafOpts{cn: "jm", ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(whoamiHandler))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS11}
	srv.StartTLS()
	defer srv.Close()
	c, err := NewWithOptions(Options{URL: srv.URL, CACert: writeFile(t, t.TempDir(), "ca.crt", ca.pem)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(context.Background()); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
}

// TestTLSAlertOnPlainHTTP covers a TLS server that, unlike Go's, answers a
// plaintext request with a TLS alert record.
func TestTLSAlertOnPlainHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { ln.Close(); <-done }()
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Read(make([]byte, 1024))
			conn.Write([]byte("\x15\x03\x03\x00\x02\x02\x46")) // fatal alert: protocol_version
			conn.Close()
		}
	}()
	c, err := New("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Jobs(context.Background())
	checkErr(t, err, []string{"the JobManager at http://" + ln.Addr().String() + " speaks TLS: use https://"})
}

// TestPlainHTTPToHangingTLSPort covers a TLS listener that hangs up on a
// plaintext request, as the JobManager's does: the client probes the port
// with a handshake to tell it from a server that crashed.
func TestPlainHTTPToHangingTLSPort(t *testing.T) {
	ca := newTestCA(t, "test CA")
	cert, _, _ := ca.issue(t, leafOpts{cn: "jm", ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	tests := []struct {
		name string
		tls  bool
		want string
	}{
		{"TLS", true, " speaks TLS: use https://"},
		{"not TLS", false, " closed the connection without answering"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			defer func() { ln.Close(); <-done }()
			go func() {
				defer close(done)
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					if tt.tls {
						tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
					} else {
						conn.Read(make([]byte, 1024))
					}
					conn.Close()
				}
			}()
			c, err := New("http://" + ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Jobs(context.Background())
			checkErr(t, err, []string{"the JobManager at http://" + ln.Addr().String() + tt.want})
		})
	}
}

func TestTokenHeader(t *testing.T) {
	var got string
	srv := startPlain(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Write([]byte(`{"jobs":[]}`))
	})
	for _, tt := range []struct {
		token, want string
	}{{testToken, "Bearer " + testToken}, {"", ""}} {
		c, err := NewWithOptions(Options{URL: srv.URL, Token: tt.token})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Jobs(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("Authorization %q, want %q", got, tt.want)
		}
	}
}

// TestPlaintextTokenRefused checks the refusal happens when the client is
// built, i.e. before anything could dial: 192.0.2.1 (TEST-NET-1) is never
// contacted.
func TestPlaintextTokenRefused(t *testing.T) {
	tests := []struct {
		url     string
		token   string
		wantErr []string
	}{
		{"http://192.0.2.1:1", testToken, []string{"refusing to send a token over plaintext http to 192.0.2.1:1; use https"}},
		{"http://jm.example.com:8081", testToken, []string{"refusing to send a token over plaintext http to jm.example.com:8081; use https"}},
		{"192.0.2.1:8081", testToken, []string{"refusing to send a token over plaintext http to 192.0.2.1:8081"}},
		{"http://192.0.2.1:1", "", nil},
		{"https://192.0.2.1:1", testToken, nil},
		{"http://localhost:8081", testToken, nil},
		{"http://127.0.0.2:8081", testToken, nil},
		{"http://[::1]:8081", testToken, nil},
		{"http://localhost:8081", "two words", []string{"the token contains spaces or control characters"}},
		{"http://user:pw@localhost:8081", "", []string{"credentials in the URL are not supported"}},
		{"ftp://localhost", "", []string{"scheme must be http or https"}},
	}
	for _, tt := range tests {
		_, err := NewWithOptions(Options{URL: tt.url, Token: tt.token})
		checkErr(t, err, tt.wantErr)
		if err != nil && strings.Contains(err.Error(), "two words") {
			t.Errorf("error %q leaks the token", err)
		}
	}
}

func TestOptionsHideToken(t *testing.T) {
	o := Options{URL: "https://jm", Token: testToken}
	for _, s := range []string{o.String(), o.GoString(), o.LogValue().String()} {
		if strings.Contains(s, testToken) {
			t.Errorf("%q leaks the token", s)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		handler http.HandlerFunc
		wantErr []string
		check   func(*testing.T, *APIError)
	}{
		{
			name: "401 with two challenges",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("WWW-Authenticate", `Bearer realm="sluice"`)
				w.Header().Add("WWW-Authenticate", `ClientCertificate realm="sluice"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			wantErr: []string{"authentication required: the JobManager accepts token, x509; pass --token/--token-file or --cert/--key"},
			check: func(t *testing.T, e *APIError) {
				if strings.Join(e.Methods, ",") != "token,x509" {
					t.Errorf("Methods %q", e.Methods)
				}
			},
		},
		{
			name: "401 with challenges in one header",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("WWW-Authenticate", `Negotiate, Bearer realm="a, b", error="x"`)
				w.WriteHeader(http.StatusUnauthorized)
			},
			wantErr: []string{"the JobManager accepts kerberos, token;"},
		},
		{
			name:  "401 for an invalid token",
			token: testToken,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("WWW-Authenticate", `Bearer realm="sluice", error="invalid_token", error_description="token expired"`)
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"errors":["authentication failed: unknown token ` + testToken + `"]}`))
			},
			wantErr: []string{"authentication failed: the JobManager rejected the token: unknown token <token>; token expired"},
		},
		{
			name: "403",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"errors":["alice may not cancel job 42"]}`, http.StatusForbidden)
			},
			wantErr: []string{"forbidden: alice may not cancel job 42"},
		},
		{
			name:    "403 in plain text",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "not in group ops", http.StatusForbidden) },
			wantErr: []string{"forbidden: not in group ops"},
		},
		{
			name: "429",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			wantErr: []string{"too many failed authentications; retry after 30s"},
			check: func(t *testing.T, e *APIError) {
				if e.RetryAfter != 30*time.Second {
					t.Errorf("RetryAfter %v", e.RetryAfter)
				}
			},
		},
		{
			name:  "redirect not followed",
			token: testToken,
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
			},
			wantErr: []string{"redirected to http://192.0.2.1/", "does not follow"},
		},
		{
			name: "other errors keep the server's text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"errors":["no job 42"]}`, http.StatusNotFound)
			},
			wantErr: []string{"404 Not Found: no job 42"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startPlain(t, tt.handler)
			c, err := NewWithOptions(Options{URL: srv.URL, Token: tt.token})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Job(context.Background(), "42")
			checkErr(t, err, tt.wantErr)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("%T is not an *APIError", err)
			}
			if tt.check != nil {
				tt.check(t, ae)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"12", 12 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"", 0},
		{"-1", 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestWhoAmI(t *testing.T) {
	srv := startPlain(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/whoami" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"username":"alice","groups":["eng","acme"],"method":"x509","listener":"internal"}`))
	})
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.WhoAmI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "alice" || strings.Join(id.Groups, ",") != "eng,acme" || id.Method != "x509" || id.Listener != "internal" {
		t.Errorf("%+v", id)
	}
}
