package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func newTestCA(t *testing.T, id string) *CA {
	t.Helper()
	c, err := New(id, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verify checks der against c's pool for both TLS roles and returns the
// parsed certificate.
func verify(t *testing.T, c *CA, der []byte) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: c.Pool(), KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
			t.Fatalf("verify (eku %v): %v", eku, err)
		}
	}
	return cert
}

func uris(c *x509.Certificate) []string {
	var s []string
	for _, u := range c.URIs {
		s = append(s, u.String())
	}
	return s
}

func TestIssue(t *testing.T) {
	c := newTestCA(t, "c1")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, role, id string
		hosts          []string
		ttl            time.Duration
		wantURI        string
		wantErr        string
	}{
		{name: "jobmanager", role: "jobmanager", hosts: []string{"jm.local", "127.0.0.1", "::1"}, ttl: time.Hour, wantURI: "spiffe://c1/jobmanager"},
		{name: "taskmanager", role: "taskmanager", id: "tm-1", ttl: time.Hour, wantURI: "spiffe://c1/taskmanager/tm-1"},
		{name: "jobmanager with id", role: "jobmanager", id: "x", ttl: time.Hour, wantErr: "takes no id"},
		{name: "taskmanager without id", role: "taskmanager", ttl: time.Hour, wantErr: "needs a TaskManager id"},
		{name: "taskmanager id with slash", role: "taskmanager", id: "a/b", ttl: time.Hour, wantErr: "identity"},
		{name: "unknown role", role: "admin", ttl: time.Hour, wantErr: "unknown role"},
		{name: "zero ttl", role: "jobmanager", wantErr: "ttl"},
		{name: "empty host", role: "jobmanager", hosts: []string{""}, ttl: time.Hour, wantErr: "empty host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := c.Issue(tt.role, tt.id, key.Public(), tt.hosts, tt.ttl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert := verify(t, c, der)
			if got := uris(cert); len(got) != 1 || got[0] != tt.wantURI {
				t.Errorf("URIs = %v, want [%s]", got, tt.wantURI)
			}
			if cert.IsCA {
				t.Error("leaf is a CA")
			}
			if cert.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %v looks not random", cert.SerialNumber)
			}
			for _, h := range tt.hosts {
				if err := cert.VerifyHostname(h); err != nil {
					t.Errorf("host %s: %v", h, err)
				}
			}
			if d := time.Until(cert.NotAfter); d > tt.ttl || d < tt.ttl-time.Minute {
				t.Errorf("lifetime %s, want %s", d, tt.ttl)
			}
			if !publicKeysEqual(cert.PublicKey, key.Public()) {
				t.Error("certificate is not for the given key")
			}
		})
	}
}

func TestIssueDoesNotOutliveCA(t *testing.T) {
	c := newTestCA(t, "c1") // valid 24h
	kp, err := c.IssueKeyPair("jobmanager", "", nil, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Leaf.NotAfter.After(c.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %s after CA NotAfter %s", kp.Leaf.NotAfter, c.Cert.NotAfter)
	}
}

func TestIssueVerifiesOnlyAgainstIssuingCA(t *testing.T) {
	a, b := newTestCA(t, "a"), newTestCA(t, "a")
	kp, err := a.IssueKeyPair("jobmanager", "", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Leaf.Verify(x509.VerifyOptions{Roots: b.Pool()}); err == nil {
		t.Fatal("certificate of CA a verified against CA b of the same cluster id")
	}
}

// TestNameConstraint: even with its key, the CA cannot vouch for an identity
// of another cluster, because its certificate constrains URI SANs to its own
// trust domain.
func TestNameConstraint(t *testing.T) {
	c := newTestCA(t, "c1")
	forged := *c
	forged.ClusterID = "c2"
	kp, err := forged.IssueKeyPair("jobmanager", "", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Leaf.Verify(x509.VerifyOptions{Roots: c.Pool()}); err == nil {
		t.Fatal("spiffe://c2/jobmanager verified under the CA of c1")
	}
}

func TestIssueKeyPair(t *testing.T) {
	c := newTestCA(t, "c1")
	kp, err := c.IssueKeyPair("taskmanager", "tm-7", []string{"tm7.local"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(kp.Certificate) != 2 || string(kp.Certificate[1]) != string(c.Cert.Raw) {
		t.Fatalf("chain has %d certificates, want [leaf, CA]", len(kp.Certificate))
	}
	leaf := verify(t, c, kp.Certificate[0])
	if !publicKeysEqual(leaf.PublicKey, kp.PrivateKey.(*ecdsa.PrivateKey).Public()) {
		t.Error("key does not match leaf")
	}
	if got := uris(leaf); len(got) != 1 || got[0] != "spiffe://c1/taskmanager/tm-7" {
		t.Errorf("URIs = %v", got)
	}
}

func TestSignCSR(t *testing.T) {
	c := newTestCA(t, "c1")
	key, csr, err := NewCSR("tm-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := c.SignCSR(csr, "taskmanager", "tm-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := verify(t, c, der)
	if got := uris(cert); len(got) != 1 || got[0] != "spiffe://c1/taskmanager/tm-1" {
		t.Errorf("URIs = %v", got)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		t.Error("certificate is not for the CSR's key")
	}
}

// TestSignCSRIgnoresContents: a TaskManager asking for the JobManager's
// identity or a CA flag gets neither; the host names it asks for (the
// names it is dialed by, checked with security.ssl.verify-hostname) are
// copied, and too many are refused.
func TestSignCSRIgnoresContents(t *testing.T) {
	c := newTestCA(t, "c1")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := url.Parse("spiffe://c1/jobmanager")
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "jobmanager", Organization: []string{"admins"}},
		DNSNames:    []string{"jobmanager.example.com"},
		IPAddresses: []net.IP{net.ParseIP("10.0.0.1")},
		URIs:        []*url.URL{evil},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := c.SignCSR(csr, "taskmanager", "tm-2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := verify(t, c, der)
	if got := uris(cert); len(got) != 1 || got[0] != "spiffe://c1/taskmanager/tm-2" {
		t.Errorf("URIs = %v, want only the requested identity", got)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "jobmanager.example.com" || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) {
		t.Errorf("CSR host SANs not copied: %v %v", cert.DNSNames, cert.IPAddresses)
	}
	if cert.IsCA {
		t.Errorf("CA flag copied")
	}
	many := make([]string, MaxCSRHosts+1)
	for i := range many {
		many[i] = fmt.Sprintf("h%d.example.com", i)
	}
	_, tooMany, err := NewCSR("tm-3", many)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SignCSR(tooMany, "taskmanager", "tm-3", time.Hour); err == nil || !strings.Contains(err.Error(), "host names") {
		t.Errorf("%d host names: %v", len(many), err)
	}
	if cert.Subject.CommonName == "jobmanager" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] == "admins" {
		t.Errorf("CSR subject copied: %v", cert.Subject)
	}
}

func TestSignCSRRefusesBadCSR(t *testing.T) {
	c := newTestCA(t, "c1")
	_, csr, err := NewCSR("tm-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	badSig := append([]byte(nil), csr...)
	badSig[len(badSig)-1] ^= 0xff // last byte of the signature's S value
	tests := []struct {
		name    string
		csr     []byte
		wantErr string
	}{
		{"bad signature", badSig, "bad signature"},
		{"garbage", []byte("not a csr"), "parse"},
		{"empty", nil, "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.SignCSR(tt.csr, "taskmanager", "tm-1", time.Hour); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestRenewIn: renewal is scheduled from the validity the holder can use,
// not from the backdated NotBefore, so a short-lived certificate is not
// already due at issue (which made renewal loop), and never sooner than
// MinRenewInterval.
func TestRenewIn(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		notAfter time.Duration // from now
		want     time.Duration
	}{
		{"24h", 24 * time.Hour, 16 * time.Hour},
		{"minimum ttl", MinCertTTL, MinCertTTL * 2 / 3},
		{"60s (the old minimum)", 60 * time.Second, 40 * time.Second},
		{"2m", 2 * time.Minute, 80 * time.Second},
		{"nearly expired: floor", 3 * time.Second, MinRenewInterval},
		{"expired: floor", -time.Minute, MinRenewInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Issued as issue does: backdated by clockSkew.
			cert := &x509.Certificate{NotBefore: now.Add(-clockSkew), NotAfter: now.Add(tt.notAfter)}
			if got := RenewIn(cert, now); got != tt.want {
				t.Errorf("RenewIn = %s, want %s", got, tt.want)
			}
		})
	}
	// A certificate not valid yet counts from its NotBefore.
	cert := &x509.Certificate{NotBefore: now.Add(time.Minute), NotAfter: now.Add(4 * time.Minute)}
	if got := RenewIn(cert, now); got != 2*time.Minute {
		t.Errorf("future NotBefore: RenewIn = %s, want 2m", got)
	}
}

// TestRenewLoopBound: a holder that renews on RenewIn's schedule renews a
// certificate of every allowed lifetime a bounded number of times: no
// loop, whatever the TTL.
func TestRenewLoopBound(t *testing.T) {
	c := newTestCA(t, "c1")
	for _, ttl := range []time.Duration{time.Second, time.Minute, 150 * time.Second, MinCertTTL} {
		kp, err := c.IssueKeyPair(RoleJobManager, "", nil, ttl)
		if err != nil {
			t.Fatal(err)
		}
		// Simulated clock: renewals within one hour.
		now, end, n := time.Now(), time.Now().Add(time.Hour), 0
		for leaf := kp.Leaf; ; n++ {
			now = now.Add(RenewIn(leaf, now))
			if now.After(end) {
				break
			}
			leaf = &x509.Certificate{NotBefore: now.Add(-clockSkew), NotAfter: now.Add(ttl)}
		}
		if limit := int(time.Hour/MinRenewInterval) + 1; n > limit {
			t.Errorf("ttl %s: %d renewals in an hour, want at most %d", ttl, n, limit)
		}
	}
}

func TestRenewBackoff(t *testing.T) {
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := RenewBackoff(i + 1); got != w {
			t.Errorf("RenewBackoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}
