package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, subject pkix.Name, usage x509.ExtKeyUsage, ips ...net.IP) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// echoUser answers with the User the filter put in the context.
var echoUser = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	u, ok := UserFrom(r.Context())
	if !ok {
		http.Error(w, "no user in context", http.StatusInternalServerError)
		return
	}
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "Authorization header reached the handler", http.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(w).Encode(u)
})

// startMTLS starts an HTTPS server that verifies client certificates if
// given, in front of Filter with chain.
func startMTLS(t *testing.T, ca *testCA, chain Union) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(Filter(FilterOptions{Listener: "external", Chain: chain})(echoUser))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, pkix.Name{CommonName: "server"}, x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.pool,
		MinVersion:   tls.VersionTLS13,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func clientWith(ca *testCA, certs ...tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: certs}}}
}

type response struct {
	status    int
	user      User
	errors    []string
	challenge []string
	header    http.Header
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, challenge: resp.Header.Values("WWW-Authenticate"), header: resp.Header}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&r.user); err != nil {
			t.Fatal(err)
		}
	} else {
		var body struct{ Errors []string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("status %d, body not JSON: %v", resp.StatusCode, err)
		}
		r.errors = body.Errors
	}
	return r
}

func TestX509ThroughFilter(t *testing.T) {
	ca := newTestCA(t)
	alice := ca.issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"acme"}}, x509.ExtKeyUsageClientAuth)
	duke := ca.issue(t, pkix.Name{CommonName: "Duke", OrganizationalUnit: []string{"SME"}, Organization: []string{"mycp"},
		Locality: []string{"Fulton"}, Province: []string{"MD"}, Country: []string{"US"}}, x509.ExtKeyUsageClientAuth)
	noCN := ca.issue(t, pkix.Name{Organization: []string{"acme"}}, x509.ExtKeyUsageClientAuth)
	kafka, err := ParsePrincipalRules(kafkaRules)
	if err != nil {
		t.Fatal(err)
	}
	only, err := ParsePrincipalRules("RULE:^CN=(admin),.*$/$1/")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		rules      PrincipalMapper
		cert       []tls.Certificate
		chain      func(Authenticator) Union
		wantStatus int
		wantUser   User
		wantErr    string
	}{
		{"CN by default, groups from O and OU", PrincipalMapper{}, []tls.Certificate{alice}, nil, 200,
			User{Name: "alice", Groups: []string{"acme", "eng"}, Method: "x509"}, ""},
		{"Kafka rules, lower case", kafka, []tls.Certificate{duke}, nil, 200,
			User{Name: "duke@sme", Groups: []string{"mycp", "SME"}, Method: "x509"}, ""},
		{"Kafka rules, DEFAULT is the whole DN", kafka, []tls.Certificate{noCN}, nil, 200,
			User{Name: "O=acme", Groups: []string{"acme"}, Method: "x509"}, ""},
		{"no rule matches", only, []tls.Certificate{alice}, nil, 401, User{},
			`authentication failed: no principal mapping rule matches subject "CN=alice,OU=eng,O=acme"`},
		{"no CN without rules", PrincipalMapper{}, []tls.Certificate{noCN}, nil, 401, User{}, "has no CN"},
		{"no certificate", PrincipalMapper{}, nil, nil, 401, User{},
			"authentication required: this listener accepts: x509"},
		{"no certificate, anonymous allowed", PrincipalMapper{}, nil, func(a Authenticator) Union { return Union{a, NewAnonymous()} }, 200,
			User{Name: "system:anonymous", Groups: []string{"system:unauthenticated"}, Method: "anonymous"}, ""},
		{"certificate rejected, anonymous allowed", only, []tls.Certificate{alice}, func(a Authenticator) Union { return Union{a, NewAnonymous()} }, 401,
			User{}, "no principal mapping rule matches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := Union{NewX509(tt.rules)}
			if tt.chain != nil {
				chain = tt.chain(NewX509(tt.rules))
			}
			srv := startMTLS(t, ca, chain)
			req, _ := http.NewRequest("GET", srv.URL, nil)
			r := do(t, clientWith(ca, tt.cert...), req)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d (errors %q)", r.status, tt.wantStatus, r.errors)
			}
			if tt.wantStatus == 200 {
				if r.user.Name != tt.wantUser.Name || r.user.Method != tt.wantUser.Method || !slices.Equal(r.user.Groups, tt.wantUser.Groups) {
					t.Errorf("user %+v, want %+v", r.user, tt.wantUser)
				}
				return
			}
			if len(r.errors) != 1 || !strings.Contains(r.errors[0], tt.wantErr) {
				t.Errorf("errors %q, want %q", r.errors, tt.wantErr)
			}
			if !slices.Equal(r.challenge, []string{`ClientCertificate realm="sluice"`}) {
				t.Errorf("WWW-Authenticate %q", r.challenge)
			}
		})
	}
}

// A certificate from another CA never gets past the TLS layer, so the
// authenticator never sees it; this pins that the test setup is real.
func TestX509UntrustedCertificateRejectedByTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	srv := startMTLS(t, ca, Union{NewX509(PrincipalMapper{})})
	mallory := other.issue(t, pkix.Name{CommonName: "alice"}, x509.ExtKeyUsageClientAuth)
	if resp, err := clientWith(ca, mallory).Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatalf("status %d, want a TLS error", resp.StatusCode)
	}
}

// Without TLS there is no certificate: no credential, not an error.
func TestX509PlainHTTP(t *testing.T) {
	_, ok, err := NewX509(PrincipalMapper{}).AuthenticateRequest(httptest.NewRequest("GET", "/", nil))
	if ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
}
