package test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/security/ca"
)

// createCerts runs `sluice security create-certs` and returns the directory.
func createCerts(t *testing.T, clusterID string, tmIDs ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"security", "create-certs", "--out", dir, "--cluster-id", clusterID}
	if len(tmIDs) > 0 {
		args = append(args, "--taskmanager-ids", strings.Join(tmIDs, ","))
	}
	out, stderr, code := runSluice(ctx, t, args...)
	if code != 0 {
		t.Fatalf("create-certs: %s %s", out, stderr)
	}
	for _, want := range []string{"SHA-1:", "SHA-256:", "security.ssl.internal.enabled: true", "Password of internal.p12"} {
		if !strings.Contains(out, want) {
			t.Errorf("create-certs output lacks %q", want)
		}
	}
	for _, f := range []string{"ca.key", "internal.pem", "internal.p12", "jobmanager.pem", "taskmanager.pem", "rest.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
	return dir
}

// identitySpec is a cluster where every process has its own certificate
// with a SPIFFE identity.
func identitySpec(dir, truststore string, n int, extra ...string) clusterSpec {
	return clusterSpec{
		n: n, slots: 2,
		defines: append([]string{"security.ssl.internal.enabled=true", "security.ssl.internal.truststore=" + truststore}, extra...),
		jm:      []string{"security.ssl.internal.keystore=" + filepath.Join(dir, "jobmanager.pem")},
		tm: func(i int) []string {
			return []string{fmt.Sprintf("security.ssl.internal.keystore=%s", filepath.Join(dir, fmt.Sprintf("taskmanager-tm-%d.pem", i)))}
		},
	}
}

func runWordcount(t *testing.T, c *cluster, p string) {
	t.Helper()
	input := writeSample(t)
	outDir := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout, stderr, code := c.sluice(ctx, "run", "examples/wordcount.yaml", "-p", p, "--param", "input="+input, "--param", "output="+outDir)
	if code != 0 {
		t.Fatalf("wordcount: exit %d\n%s\n%s", code, stdout, stderr)
	}
	equalLines(t, readParts(t, outDir), referenceCounts(t, input))
}

// TestInternalTLSWordcount: wordcount at -p 4 on a JM and two TMs with
// internal TLS and per-process identities gives the reference result (the
// same as with TLS off, see TestWordcountMultiProcess).
func TestInternalTLSWordcount(t *testing.T) {
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	c := startClusterWith(t, identitySpec(dir, filepath.Join(dir, "truststore.pem"), 2))
	runWordcount(t, c, "4")
	if !strings.Contains(c.jm.Log(), "internal TLS on") {
		t.Errorf("JobManager does not say internal TLS is on")
	}
	if strings.Contains(c.jm.Log(), "internal connections are NOT secured") {
		t.Errorf("JobManager claims internal connections are not secured")
	}
}

// pki is the cluster's CA, read back from create-certs' files, to forge
// certificates with.
type pki struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func loadPKI(t *testing.T, dir string) pki {
	t.Helper()
	cb, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	kb, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	b, _ := pem.Decode(cb)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kblock, _ := pem.Decode(kb)
	k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		ek, err2 := x509.ParseECPrivateKey(kblock.Bytes)
		if err2 != nil {
			t.Fatalf("ca.key: %v / %v", err, err2)
		}
		k = ek
	}
	return pki{cert, k.(crypto.Signer)}
}

// issue signs a client+server certificate for uri valid in [from, to].
func (p pki) issue(t *testing.T, uri string, from, to time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "forged"},
		NotBefore: from, NotAfter: to, URIs: []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, p.cert.Raw}, PrivateKey: key}
}

func keyPair(t *testing.T, path string) tls.Certificate {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(path, path)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// attempt connects with the given client TLS config (nil: plaintext) and
// reports whether the server admitted the connection. In TLS 1.3 a server
// refuses a client certificate after the client's side of the handshake
// is done, so a refusal may only show on the first read.
func attempt(addr string, cfg *tls.Config) (admitted bool, why string) {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if cfg == nil {
		_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		if n > 0 && strings.HasPrefix(string(buf[:n]), "HTTP/") {
			return true, "plaintext HTTP answered"
		}
		return false, fmt.Sprint(err)
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return false, err.Error()
	}
	_ = tc.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	_, err = tc.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, "no answer (admitted, waiting for the protocol)"
	}
	if err == nil {
		return true, "data"
	}
	return false, err.Error()
}

// TestInternalTLSRefusals: each internal endpoint admits valid material
// and refuses plaintext, no client certificate, another CA, expired and
// not-yet-valid certificates, the wrong identity, a foreign cluster and
// TLS 1.1; the cluster keeps running through all of them.
func TestInternalTLSRefusals(t *testing.T) {
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	// The trust store also trusts the CA of cluster c2 (two clusters
	// sharing a trust bundle): a c2 certificate chains, but is refused as
	// foreign.
	foreign, err := ca.New("c2", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	os.WriteFile(bundle, append(caPEM, foreign.CertPEM()...), 0o644)
	c := startClusterWith(t, identitySpec(dir, bundle, 2))
	blobPort := c.blobPort

	var tms map[string][]map[string]any
	if err := c.get("/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	var tm2 map[string]any
	for _, tm := range tms["taskmanagers"] {
		if tm["id"] == "tm-2" {
			tm2 = tm
		}
	}
	endpoints := []struct {
		name, addr string
		alpn       []string
		valid      string // the certificate that is admitted
	}{
		{"jobmanager rpc", fmt.Sprintf("127.0.0.1:%d", c.rpcPort), []string{"h2"}, "taskmanager-tm-1.pem"},
		{"jobmanager blob", fmt.Sprintf("127.0.0.1:%d", blobPort), nil, "taskmanager-tm-1.pem"},
		{"taskmanager rpc", tm2["path"].(string), []string{"h2"}, "jobmanager.pem"},
		{"taskmanager data", tm2["dataAddress"].(string), nil, "taskmanager-tm-1.pem"},
	}
	ours := loadPKI(t, dir)
	other, _ := ca.New("c1", 24*time.Hour) // same cluster id, untrusted CA
	otherCert, _ := other.IssueKeyPair(ca.RoleTaskManager, "tm-9", nil, time.Hour)
	foreignCert, _ := foreign.IssueKeyPair(ca.RoleTaskManager, "tm-1", nil, time.Hour)
	now := time.Now()
	roots := x509.NewCertPool()
	roots.AddCert(ours.cert)

	for _, ep := range endpoints {
		cfg := func(cert *tls.Certificate, maxVersion uint16) *tls.Config {
			c := &tls.Config{InsecureSkipVerify: true, NextProtos: ep.alpn, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
			if cert != nil {
				c.Certificates = []tls.Certificate{*cert}
			}
			return c
		}
		valid := keyPair(t, filepath.Join(dir, ep.valid))
		wrongRole := keyPair(t, filepath.Join(dir, "jobmanager.pem"))
		if ep.valid == "jobmanager.pem" {
			// A taskmanager certificate acting as the jobmanager.
			wrongRole = keyPair(t, filepath.Join(dir, "taskmanager-tm-1.pem"))
		}
		expired := ours.issue(t, "spiffe://c1/taskmanager/tm-1", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		future := ours.issue(t, "spiffe://c1/taskmanager/tm-1", now.Add(24*time.Hour), now.Add(48*time.Hour))
		cases := []struct {
			name  string
			cfg   *tls.Config
			admit bool
		}{
			{"valid certificate", cfg(&valid, 0), true},
			{"plaintext", nil, false},
			{"no client certificate", cfg(nil, 0), false},
			{"certificate from another CA", cfg(&otherCert, 0), false},
			{"expired certificate", cfg(&expired, 0), false},
			{"not yet valid certificate", cfg(&future, 0), false},
			{"wrong role", cfg(&wrongRole, 0), false},
			{"foreign cluster id", cfg(&foreignCert, 0), false},
			{"TLS 1.1", cfg(&valid, tls.VersionTLS11), false},
		}
		for _, tc := range cases {
			admitted, why := attempt(ep.addr, tc.cfg)
			if admitted != tc.admit {
				t.Errorf("%s, %s: admitted=%v (%s), want %v", ep.name, tc.name, admitted, why, tc.admit)
			}
		}
	}
	// The refusals were logged with reasons a person can act on.
	logs := c.jm.Log() + c.tms[1].Log()
	for _, want := range []string{"unknown CA", "expired", "not valid before", "not allowed", "cluster", "plaintext", "no client certificate", "TLS 1.1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no handshake failure logged with %q", want)
		}
	}
	// And everything still works.
	runWordcount(t, c, "4")
}

// TestInternalTLSFakeJobManager: a TaskManager refuses a JobManager whose
// certificate is a taskmanager's (a stolen TM certificate cannot act as
// the JM), and says why.
func TestInternalTLSFakeJobManager(t *testing.T) {
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	fake := keyPair(t, filepath.Join(dir, "taskmanager-tm-2.pem"))
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{fake}, NextProtos: []string{"h2"}, ClientAuth: tls.RequestClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); time.Sleep(time.Second); c.Close() }()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	p := startProc(t, "taskmanager", "taskmanager", "--id", "tm-1", "-D", "security.ssl.internal.enabled=true",
		"-D", "security.ssl.internal.keystore="+filepath.Join(dir, "taskmanager-tm-1.pem"),
		"-D", "security.ssl.internal.truststore="+filepath.Join(dir, "truststore.pem"),
		"-D", "jobmanager.rpc.address=127.0.0.1", "-D", fmt.Sprintf("jobmanager.rpc.port=%d", port),
		"-D", "taskmanager.bind-host=127.0.0.1", "-D", "taskmanager.host=127.0.0.1")
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.Log(), "is not allowed here (want jobmanager)") {
		if time.Now().After(deadline) {
			t.Fatalf("TaskManager did not refuse the fake JobManager:\n%s", p.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(p.Log(), "registered with jobmanager") {
		t.Fatal("TaskManager registered with a fake JobManager")
	}
}

// TestInternalTLSFingerprint: Flink's shared-certificate model with a
// pinned fingerprint: the shared certificate is admitted; another
// certificate from the same CA is refused for its fingerprint.
func TestInternalTLSFingerprint(t *testing.T) {
	dir := createCerts(t, "c1")
	shared := keyPair(t, filepath.Join(dir, "internal.pem"))
	leaf, _ := x509.ParseCertificate(shared.Certificate[0])
	fp := ca.FingerprintOf(leaf)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, _ := runSluice(ctx, t, "security", "create-certs", "--out", filepath.Join(t.TempDir(), "x"))
	_ = out
	for _, pin := range []string{fp.SHA1, fp.SHA256} {
		c := startCluster(t, 1, 2, "security.ssl.internal.enabled=true",
			"security.ssl.internal.keystore="+filepath.Join(dir, "internal.pem"),
			"security.ssl.internal.truststore="+filepath.Join(dir, "truststore.pem"),
			"security.ssl.internal.cert.fingerprint="+pin)
		var tms map[string][]map[string]any
		if err := c.get("/taskmanagers", &tms); err != nil {
			t.Fatal(err)
		}
		data := tms["taskmanagers"][0]["dataAddress"].(string)
		if ok, why := attempt(data, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{shared}}); !ok {
			t.Errorf("pin %s: shared certificate refused: %s", pin[:8], why)
		}
		// Same CA, not the pinned certificate.
		other := keyPair(t, filepath.Join(dir, "taskmanager.pem"))
		if ok, why := attempt(data, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{other}}); ok {
			t.Errorf("pin %s: unpinned certificate admitted (%s)", pin[:8], why)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(c.tms[0].Log(), "fingerprint does not match") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(c.tms[0].Log(), "fingerprint does not match") {
			t.Errorf("fingerprint mismatch not logged")
		}
		c.waitFor(5*time.Second, "shared-certificate mode to say identities are not enforced", func() bool {
			return strings.Contains(c.jm.Log(), "no identity")
		})
		runWordcount(t, c, "2")
	}
}

// TestInternalTLSOpenSSL: a TLS client we did not write. The data port
// refuses openssl s_client without a client certificate, accepts it with
// one, and negotiates TLS 1.3.
func TestInternalTLSOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required in CI (make deps installs it)")
		}
		t.Skip("openssl not installed")
	}
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	c := startClusterWith(t, identitySpec(dir, filepath.Join(dir, "truststore.pem"), 1))
	var tms map[string][]map[string]any
	if err := c.get("/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	data := tms["taskmanagers"][0]["dataAddress"].(string)
	sclient := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_client", "-connect", data, "-CAfile", filepath.Join(dir, "ca.crt")}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := sclient("-ign_eof")
	if !strings.Contains(out, "certificate required") {
		t.Errorf("without a client certificate: want a 'certificate required' alert, got:\n%s", out)
	}
	tm2 := filepath.Join(dir, "taskmanager-tm-2.pem")
	out = sclient("-cert", tm2, "-key", tm2, "-brief")
	if !strings.Contains(out, "Protocol version: TLSv1.3") || !strings.Contains(out, "Verification: OK") {
		t.Errorf("with a client certificate: want TLS 1.3 and a verified server, got:\n%s", out)
	}
	if strings.Contains(out, "alert") {
		t.Errorf("with a client certificate: refused:\n%s", out)
	}
	out = sclient("-cert", tm2, "-key", tm2, "-tls1_2")
	if !strings.Contains(out, "alert protocol version") && !strings.Contains(out, "no protocols available") && !strings.Contains(out, "wrong version") {
		t.Errorf("TLS 1.2 against the TLS 1.3-only default: want a protocol version refusal, got:\n%s", out)
	}
}
