package ca

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// loadPEMKeyPair loads a PEM keystore (chain + key) the way any Go TLS
// stack would, and checks that its leaf chains to roots.
func loadPEMKeyPair(t *testing.T, path string, roots *x509.CertPool, eku x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(b, b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inter := x509.NewCertPool()
	for _, der := range kp.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := kp.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
		t.Fatalf("%s does not chain to ca.crt: %v", path, err)
	}
	return kp.Leaf
}

func TestCreateCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	r, err := CreateCerts(CreateCertsOptions{Dir: dir, ClusterID: "prod", Hosts: []string{"sluice.example.com", "10.1.2.3"}, Days: 7})
	if err != nil {
		t.Fatal(err)
	}
	if r.ClusterID != "prod" || len(r.P12Password) < 20 {
		t.Errorf("result: cluster %q, password length %d", r.ClusterID, len(r.P12Password))
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %04o, want 0700", m)
	}
	wantModes := map[string]os.FileMode{
		CertFile: 0o644, TruststoreFile: 0o644,
		KeyFile: 0o600, InternalPEMFile: 0o600, InternalP12File: 0o600,
		JobManagerPEMFile: 0o600, TaskManagerPEMFile: 0o600, RESTPEMFile: 0o600,
	}
	if len(r.Files) != len(wantModes) {
		t.Errorf("Files = %v", r.Files)
	}
	for name, want := range wantModes {
		p := filepath.Join(dir, name)
		if !slices.Contains(r.Files, p) {
			t.Errorf("Files lacks %s", p)
		}
		if got := mode(t, p); got != want {
			t.Errorf("mode of %s = %04o, want %04o", name, got, want)
		}
	}

	caPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := os.ReadFile(filepath.Join(dir, TruststoreFile))
	if err != nil || !bytes.Equal(trust, caPEM) {
		t.Errorf("truststore.pem differs from ca.crt (%v)", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	caCert, err := parseCertPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The CA key on disk belongs to ca.crt and LoadOrCreate accepts the
	// directory, so create-certs output can seed auto mode.
	if c, err := LoadOrCreate(dir, "prod"); err != nil || !c.Cert.Equal(caCert) {
		t.Errorf("LoadOrCreate on create-certs output: %v", err)
	}

	tests := []struct {
		file    string
		eku     x509.ExtKeyUsage
		wantURI []string
	}{
		{JobManagerPEMFile, x509.ExtKeyUsageClientAuth, []string{"spiffe://prod/jobmanager"}},
		{TaskManagerPEMFile, x509.ExtKeyUsageClientAuth, []string{"spiffe://prod/taskmanager"}},
		{InternalPEMFile, x509.ExtKeyUsageClientAuth, nil},
		{RESTPEMFile, x509.ExtKeyUsageServerAuth, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			leaf := loadPEMKeyPair(t, filepath.Join(dir, tt.file), roots, tt.eku)
			loadPEMKeyPair(t, filepath.Join(dir, tt.file), roots, x509.ExtKeyUsageServerAuth)
			if got := uris(leaf); !slices.Equal(got, tt.wantURI) {
				t.Errorf("URIs = %v, want %v", got, tt.wantURI)
			}
			for _, h := range []string{"sluice.example.com", "10.1.2.3"} {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Errorf("host %s: %v", h, err)
				}
			}
			if d := time.Until(leaf.NotAfter); d > 7*24*time.Hour || d < 7*24*time.Hour-time.Minute {
				t.Errorf("lifetime %s, want 7 days", d)
			}
			fp, ok := r.Fingerprints[tt.file]
			sum := sha256.Sum256(leaf.Raw)
			if !ok || fp.SHA256 != colonHex(sum[:]) {
				t.Errorf("fingerprint %+v, want SHA-256 %s", fp, colonHex(sum[:]))
			}
			if !regexp.MustCompile(`^([0-9A-F]{2}:){19}[0-9A-F]{2}$`).MatchString(fp.SHA1) ||
				!regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp.SHA256) {
				t.Errorf("fingerprint format: %+v", fp)
			}
		})
	}
	// rest.pem is a server certificate only: it must not authenticate as
	// a client on internal connections, which trust the same CA.
	b, _ := os.ReadFile(filepath.Join(dir, RESTPEMFile))
	rest, _ := tls.X509KeyPair(b, b)
	if _, err := rest.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("rest.pem is usable as a client certificate")
	}

	p12, err := os.ReadFile(filepath.Join(dir, InternalP12File))
	if err != nil {
		t.Fatal(err)
	}
	key, leaf, cas, err := pkcs12.DecodeChain(p12, r.P12Password)
	if err != nil {
		t.Fatalf("decode internal.p12: %v", err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, InternalPEMFile))
	internal, _ := tls.X509KeyPair(b, b)
	if !leaf.Equal(internal.Leaf) || len(cas) != 1 || !cas[0].Equal(caCert) {
		t.Error("internal.p12 does not hold internal.pem's certificate and the CA")
	}
	if !publicKeysEqual(leaf.PublicKey, key.(crypto.Signer).Public()) {
		t.Error("internal.p12 key does not match its certificate")
	}
	if _, _, _, err := pkcs12.DecodeChain(p12, "wrong"); err == nil {
		t.Error("internal.p12 decodes with a wrong password")
	}

	snippet := r.ConfigSnippet()
	for _, want := range []string{
		"security.ssl.internal.enabled: true",
		filepath.Join(dir, InternalP12File),
		"security.ssl.internal.keystore-password: \"" + r.P12Password + "\"",
		filepath.Join(dir, TruststoreFile),
		"security.ssl.internal.cert.fingerprint: " + r.Fingerprints[InternalPEMFile].SHA256,
		"security.ssl.rest.enabled: true",
		filepath.Join(dir, RESTPEMFile),
		filepath.Join(dir, JobManagerPEMFile),
		filepath.Join(dir, TaskManagerPEMFile),
	} {
		if !strings.Contains(snippet, want) {
			t.Errorf("ConfigSnippet lacks %q:\n%s", want, snippet)
		}
	}

	// A second run must not replace the CA under running processes.
	if _, err := CreateCerts(CreateCertsOptions{Dir: dir}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second CreateCerts: err = %v, want already exists", err)
	}
}

func TestCreateCertsDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	r, err := CreateCerts(CreateCertsOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(r.ClusterID) {
		t.Errorf("generated cluster id %q", r.ClusterID)
	}
	b, err := os.ReadFile(filepath.Join(dir, RESTPEMFile))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(b, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1"} {
		if err := kp.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("default host %s: %v", h, err)
		}
	}
	if d := time.Until(kp.Leaf.NotAfter); d < 364*24*time.Hour || d > 365*24*time.Hour {
		t.Errorf("default lifetime %s, want 365 days", d)
	}
	if _, err := CreateCerts(CreateCertsOptions{}); err == nil {
		t.Error("CreateCerts without a directory succeeded")
	}
}
