package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoadOrCreate(t *testing.T) {
	tests := []struct {
		name      string
		clusterID string
		wantID    *regexp.Regexp
	}{
		{"generated id", "", regexp.MustCompile(`^[0-9a-f]{16}$`)},
		{"given id", "prod-eu.1", regexp.MustCompile(`^prod-eu\.1$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "auto", "ca")
			c1, err := LoadOrCreate(dir, tt.clusterID)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantID.MatchString(c1.ClusterID) {
				t.Fatalf("cluster id %q does not match %s", c1.ClusterID, tt.wantID)
			}
			for path, want := range map[string]os.FileMode{
				dir:                               0o700,
				filepath.Join(dir, KeyFile):       0o600,
				filepath.Join(dir, ClusterIDFile): 0o600,
				filepath.Join(dir, CertFile):      0o644,
			} {
				if got := mode(t, path); got != want {
					t.Errorf("mode of %s = %04o, want %04o", path, got, want)
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, ClusterIDFile))
			if err != nil || strings.TrimSpace(string(b)) != c1.ClusterID {
				t.Errorf("cluster-id file = %q, %v; want %q", b, err, c1.ClusterID)
			}

			// Second start: the same CA, whether or not the id is given.
			for _, id := range []string{"", c1.ClusterID} {
				c2, err := LoadOrCreate(dir, id)
				if err != nil {
					t.Fatal(err)
				}
				if !c2.Cert.Equal(c1.Cert) || c2.ClusterID != c1.ClusterID || !publicKeysEqual(c2.Key.Public(), c1.Key.Public()) {
					t.Fatalf("second LoadOrCreate(%q) returned a different CA", id)
				}
			}
			if _, err := LoadOrCreate(dir, "another-cluster"); err == nil || !strings.Contains(err.Error(), "does not match") {
				t.Fatalf("LoadOrCreate with another cluster id: err = %v, want mismatch", err)
			}
		})
	}
}

func TestCACertificate(t *testing.T) {
	c, err := LoadOrCreate(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	cert := c.Cert
	if cert.Subject.CommonName != "sluice cluster CA c1" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("not a path-length-0 CA: IsCA=%v MaxPathLen=%d", cert.IsCA, cert.MaxPathLen)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://c1" {
		t.Errorf("URIs = %v, want [spiffe://c1]", cert.URIs)
	}
	if life := time.Until(cert.NotAfter); life < DefaultCAValidity-time.Hour || life > DefaultCAValidity {
		t.Errorf("CA lifetime %s, want ~10 years", life)
	}
	k, ok := c.Key.Public().(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.Key.Public())
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if want := "sha256:" + hex.EncodeToString(sum[:]); c.Hash() != want || HashOf(cert) != want {
		t.Errorf("Hash = %s, want %s", c.Hash(), want)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(c.Hash()) {
		t.Errorf("Hash format %q", c.Hash())
	}
	if got, err := parseCertPEM(c.CertPEM()); err != nil || !got.Equal(cert) {
		t.Errorf("CertPEM does not round-trip: %v", err)
	}
}

func TestLoadOrCreateRefusesInsecureKey(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, false},
		{0o604, false},
		{0o644, false},
		{0o660, false},
		{0o602, false},
	}
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, ""); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, KeyFile)
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			if err := os.Chmod(keyPath, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir, "")
			if tt.ok {
				if err != nil {
					t.Fatalf("mode %04o refused: %v", tt.mode, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("mode %04o accepted", tt.mode)
			}
			for _, want := range []string{keyPath, "chmod 600"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestLoadOrCreateBrokenDir(t *testing.T) {
	tests := []struct {
		name    string
		break_  func(dir string) error
		wantErr string
	}{
		{"missing key", func(dir string) error { return os.Remove(filepath.Join(dir, KeyFile)) }, "incomplete"},
		{"missing cert", func(dir string) error { return os.Remove(filepath.Join(dir, CertFile)) }, "incomplete"},
		{"edited cluster-id", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, ClusterIDFile), []byte("other\n"), 0o600)
		}, "does not match"},
		{"foreign key", func(dir string) error {
			other, err := New("x", time.Hour)
			if err != nil {
				return err
			}
			k, err := encodeKeyPEM(other.Key)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, KeyFile), k, 0o600)
		}, "does not belong"},
		{"garbage cert", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, CertFile), []byte("nope"), 0o644)
		}, "no CERTIFICATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreate(dir, "c1"); err != nil {
				t.Fatal(err)
			}
			if err := tt.break_(dir); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir, "")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestInvalidClusterID(t *testing.T) {
	for _, id := range []string{"Upper", "spiffe://x", "a/b", "sp ace", "ü"} {
		if _, err := New(id, time.Hour); err == nil {
			t.Errorf("New(%q) accepted an invalid cluster id", id)
		}
	}
}

// TestOpenSSLReadsCA checks that the CA is readable by the tool users will
// inspect it with. Skipped without openssl, except in CI.
func TestOpenSSLReadsCA(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not found in CI")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, "c1"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "x509", "-in", filepath.Join(dir, CertFile), "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, want := range []string{"CN=sluice cluster CA c1", "CA:TRUE", "URI:spiffe://c1", "prime256v1"} {
		if !strings.Contains(strings.ReplaceAll(string(out), " = ", "="), want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
}
