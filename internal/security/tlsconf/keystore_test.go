package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

func tempFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestLoadKeyStorePEM(t *testing.T) {
	p := getPKI(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaCert := issue(t, p.ca1, p.ca1Key, "rsa", leafOpts{key: rsaKey, uri: "spiffe://c1/jobmanager"})
	ecCert := issue(t, p.ca1, p.ca1Key, "ec", leafOpts{key: ecKey})
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	pk8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	tests := []struct {
		name, file, wantErr string
		wantCN              string
		wantChain           int
	}{
		{name: "PKCS#1", file: string(certPEM(rsaCert.Leaf)) + string(pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))), wantCN: "rsa", wantChain: 1},
		{name: "PKCS#8", file: string(pemOf(t, p.tm)), wantCN: "tm1", wantChain: 1},
		{name: "EC, key first, CA first", file: string(pemBlock("EC PRIVATE KEY", ecDER)) + string(certPEM(p.ca1, ecCert.Leaf)), wantCN: "ec", wantChain: 2},
		{name: "encrypted PKCS#8", file: string(certPEM(ecCert.Leaf)) + string(pemBlock("ENCRYPTED PRIVATE KEY", pk8)), wantErr: "decrypt it with `openssl"},
		{name: "legacy encrypted", file: string(certPEM(ecCert.Leaf)) + "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END EC PRIVATE KEY-----\n", wantErr: "decrypt it with `openssl"},
		{name: "mismatch", file: string(certPEM(p.jm.Leaf)) + string(pemBlock("PRIVATE KEY", pk8)), wantErr: "certificate and private key in"},
		{name: "no key", file: string(certPEM(p.jm.Leaf)), wantErr: "no private key in PEM keystore"},
		{name: "no cert", file: string(pemBlock("PRIVATE KEY", pk8)), wantErr: "no certificate in keystore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempFile(t, "ks.pem", []byte(tt.file))
			for _, typ := range []string{"", "PEM", "pem"} {
				c, err := LoadKeyStore(path, typ, "", "")
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
						t.Fatalf("err = %v, want %q naming the path", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Leaf.Subject.CommonName != tt.wantCN || len(c.Certificate) != tt.wantChain {
					t.Errorf("leaf %s, chain %d", c.Leaf.Subject, len(c.Certificate))
				}
				if _, err := tls.X509KeyPair(certPEM(c.Leaf), mustPK8(t, c)); err != nil {
					t.Errorf("loaded pair unusable: %v", err)
				}
			}
		})
	}
}

func mustPK8(t *testing.T, c tls.Certificate) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func TestLoadKeyStorePKCS12Modern(t *testing.T) {
	p := getPKI(t)
	pfx, err := pkcs12.Modern.Encode(p.jm.PrivateKey, p.jm.Leaf, []*x509.Certificate{p.ca1}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	path := tempFile(t, "ks.p12", pfx)
	for _, typ := range []string{"", "PKCS12"} {
		c, err := LoadKeyStore(path, typ, "s3cret", "")
		if err != nil {
			t.Fatal(err)
		}
		if !c.Leaf.Equal(p.jm.Leaf) || len(c.Certificate) != 2 {
			t.Errorf("leaf %s chain %d", c.Leaf.Subject, len(c.Certificate))
		}
	}
	// The password in key-password only still opens it.
	if _, err := LoadKeyStore(path, "", "", "s3cret"); err != nil {
		t.Errorf("key-password only: %v", err)
	}
	_, err = LoadKeyStore(path, "", "wrong", "")
	if err == nil || !strings.Contains(err.Error(), "wrong keystore password (security.ssl.internal.keystore-password)") {
		t.Errorf("wrong password: %v", err)
	}

	ts, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{p.ca1, p.ca2}, "tpw")
	if err != nil {
		t.Fatal(err)
	}
	tpath := tempFile(t, "ts.p12", ts)
	_, certs, err := LoadTrustStore(tpath, "", "tpw")
	if err != nil || len(certs) != 2 {
		t.Fatalf("truststore: %d certs, %v", len(certs), err)
	}
	if _, _, err := LoadTrustStore(tpath, "", "nope"); err == nil || !strings.Contains(err.Error(), "wrong truststore password (security.ssl.internal.truststore-password)") {
		t.Errorf("wrong truststore password: %v", err)
	}
	if _, err := LoadKeyStore(tpath, "", "tpw", ""); err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("truststore as keystore: %v", err)
	}
	// A keystore used as trust store trusts its key entry's certificate.
	_, certs, err = LoadTrustStore(path, "", "s3cret")
	if err != nil || len(certs) != 1 || !certs[0].Equal(p.jm.Leaf) {
		t.Errorf("keystore as truststore: %v, %v", certs, err)
	}
}

func TestLoadTrustStorePEM(t *testing.T) {
	p := getPKI(t)
	pool, certs, err := LoadTrustStore(tempFile(t, "ca.pem", certPEM(p.ca1, p.ca2)), "", "")
	if err != nil || len(certs) != 2 || pool == nil {
		t.Fatalf("%d certs, %v", len(certs), err)
	}
	if _, _, err := LoadTrustStore(tempFile(t, "empty.pem", []byte("-----BEGIN NOTHING-----\n-----END NOTHING-----\n")), "", ""); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("empty: %v", err)
	}
}

func TestStoreTypeErrors(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		typ  string
		want string
	}{
		{[]byte("hello"), "", "is not a PEM, JKS or PKCS12 store"},
		{[]byte{0xCE, 0xCE, 0xCE, 0xCE, 0, 0}, "", "JCEKS"},
		{[]byte{0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF}, "", "truncated or corrupt JKS"},
		{[]byte{0x30, 1, 2}, "", "read PKCS12 keystore"},
		{[]byte("x"), "JCEKS", `store type "JCEKS" is not supported`},
	} {
		_, err := LoadKeyStore(tempFile(t, "ks", tc.data), tc.typ, "pw", "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.data, err, tc.want)
		}
	}
	if _, err := LoadKeyStore(filepath.Join(t.TempDir(), "missing"), "", "", ""); err == nil || !strings.Contains(err.Error(), "security.ssl.internal.keystore") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzLoadKeyStore(f *testing.F) {
	p := getPKI(f)
	pfx, _ := pkcs12.Modern.Encode(p.jm.PrivateKey, p.jm.Leaf, nil, "pw")
	f.Add(pemOf(f, p.jm))
	f.Add(pfx)
	f.Add([]byte{0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'a'})
	f.Add(bytes.Repeat([]byte{0x30}, 8))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "ks")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		LoadKeyStore(path, "", "pw", "pw")
		LoadTrustStore(path, "", "pw")
	})
}
