package tlsconf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPKI is the certificates of the tests: two CAs and leaves with and
// without identities, valid and not.
type testPKI struct {
	ca1, ca2         *x509.Certificate
	ca1Key, ca2Key   crypto.Signer
	roots1, roots2   *x509.CertPool
	jm, jm2, tm, tm2 tls.Certificate // c1 identities, CA1 (tm2 is a second TM)
	tmOtherCA        tls.Certificate // c1 TM signed by CA2
	foreign          tls.Certificate // spiffe://c2/taskmanager/x, CA1
	expired, notYet  tls.Certificate // c1 TM, CA1
	shared, shared2  tls.Certificate // no identity, CA1
	malformed        tls.Certificate // spiffe://c1/admin, CA1
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() { pki = buildPKI(t) })
	return pki
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serial atomic.Int64

func newCA(t testing.TB, name string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := newKey(t)

	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

type leafOpts struct {
	uri                 string
	notBefore, notAfter time.Time
	key                 crypto.Signer
	hosts               []string // DNS names and IP addresses
}

func issue(t testing.TB, ca *x509.Certificate, caKey crypto.Signer, cn string, o leafOpts) tls.Certificate {
	t.Helper()
	if o.key == nil {
		o.key = newKey(t)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if o.uri != "" {
		u, err := url.Parse(o.uri)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	for _, h := range o.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, o.key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: o.key, Leaf: leaf}
}

func buildPKI(t testing.TB) *testPKI {
	p := &testPKI{}
	p.ca1, p.ca1Key = newCA(t, "ca1")
	p.ca2, p.ca2Key = newCA(t, "ca2")
	p.roots1, p.roots2 = x509.NewCertPool(), x509.NewCertPool()
	p.roots1.AddCert(p.ca1)
	p.roots2.AddCert(p.ca2)
	p.jm = issue(t, p.ca1, p.ca1Key, "jm", leafOpts{uri: "spiffe://c1/jobmanager"})
	p.jm2 = issue(t, p.ca1, p.ca1Key, "jm2", leafOpts{uri: "spiffe://c1/jobmanager"})
	p.tm = issue(t, p.ca1, p.ca1Key, "tm1", leafOpts{uri: "spiffe://c1/taskmanager/tm1"})
	p.tm2 = issue(t, p.ca1, p.ca1Key, "tm2", leafOpts{uri: "spiffe://c1/taskmanager/tm2"})
	p.tmOtherCA = issue(t, p.ca2, p.ca2Key, "tm-ca2", leafOpts{uri: "spiffe://c1/taskmanager/tm9"})
	p.foreign = issue(t, p.ca1, p.ca1Key, "foreign", leafOpts{uri: "spiffe://c2/taskmanager/x"})
	p.expired = issue(t, p.ca1, p.ca1Key, "expired", leafOpts{uri: "spiffe://c1/taskmanager/old",
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	p.notYet = issue(t, p.ca1, p.ca1Key, "notyet", leafOpts{uri: "spiffe://c1/taskmanager/new",
		notBefore: time.Now().Add(24 * time.Hour), notAfter: time.Now().Add(48 * time.Hour)})
	p.shared = issue(t, p.ca1, p.ca1Key, "shared", leafOpts{})
	p.shared2 = issue(t, p.ca1, p.ca1Key, "shared2", leafOpts{})
	p.malformed = issue(t, p.ca1, p.ca1Key, "malformed", leafOpts{uri: "spiffe://c1/admin"})
	return p
}

// pemOf encodes a certificate chain and its key (PKCS#8) as one PEM file.
func pemOf(t testing.TB, c tls.Certificate) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, der := range c.Certificate {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	k, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: k})
	return b.Bytes()
}

func certPEM(cs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range cs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// logBuf is a concurrency-safe log sink for asserting log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) count(s string) int { return strings.Count(l.String(), s) }

func newLogger() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// hsResult is what each side of one handshake saw.
type hsResult struct {
	serverErr, clientErr   error
	serverPeer, clientPeer *x509.Certificate // the certificate each side received
	resumed                bool
}

// handshake runs one TLS handshake over real TCP loopback. The server
// writes one byte after a successful handshake, and the client reads it,
// so a refusal by the server after the client's TLS 1.3 Finished reaches
// the client too.
func handshake(t *testing.T, srv, cli *tls.Config) hsResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var res hsResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			res.serverErr = err
			return
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, srv)
		defer tc.Close()
		if res.serverErr = tc.HandshakeContext(context.Background()); res.serverErr != nil {
			return
		}
		if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
			res.serverPeer = pc[0]
		}
		tc.Write([]byte{1})
		// Wait for the client to close so the ticket and byte are read.
		tc.Read(make([]byte, 1))
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, cli)
	res.clientErr = tc.Handshake()
	if res.clientErr == nil {
		cs := tc.ConnectionState()
		res.clientPeer, res.resumed = cs.PeerCertificates[0], cs.DidResume
		_, res.clientErr = tc.Read(make([]byte, 1))
	}
	tc.Close()
	<-done
	return res
}

// plaintextHandshake sends plaintext to a TLS server and returns the
// server's handshake error.
func plaintextHandshake(t *testing.T, srv *tls.Config, send string) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		errc <- tls.Server(c, srv).Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(send))
	return <-errc
}
