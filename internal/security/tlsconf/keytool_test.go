package tlsconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// keytool runs the JDK's keytool, so the stores under test are the ones
// Flink users really have.
func keytool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("keytool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func needKeytool(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("keytool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("keytool not found, and CI=true: install a JDK")
		}
		t.Skip("keytool not found (install a JDK to run this test)")
	}
}

func TestKeytoolStores(t *testing.T) {
	needKeytool(t)
	dir := t.TempDir()
	f := func(n string) string { return filepath.Join(dir, n) }

	// JM in PKCS12 (keytool forces key password = store password there),
	// TM in JKS with a separate key password.
	keytool(t, "-genkeypair", "-alias", "jm", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=jm",
		"-ext", "san=uri:spiffe://c1/jobmanager", "-validity", "2",
		"-keystore", f("jm.p12"), "-storetype", "PKCS12", "-storepass", "jmstorepw")
	keytool(t, "-genkeypair", "-alias", "tm", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=tm",
		"-ext", "san=uri:spiffe://c1/taskmanager/tm1", "-validity", "2",
		"-keystore", f("tm.jks"), "-storetype", "JKS", "-storepass", "tmstorepw", "-keypass", "tmkeypw")
	keytool(t, "-exportcert", "-rfc", "-alias", "jm", "-keystore", f("jm.p12"), "-storepass", "jmstorepw", "-file", f("jm.crt"))
	keytool(t, "-exportcert", "-rfc", "-alias", "tm", "-keystore", f("tm.jks"), "-storepass", "tmstorepw", "-file", f("tm.crt"))
	for _, ts := range []struct{ file, typ string }{{"trust.p12", "PKCS12"}, {"trust.jks", "JKS"}} {
		for _, c := range []string{"jm", "tm"} {
			keytool(t, "-importcert", "-noprompt", "-alias", c, "-file", f(c+".crt"),
				"-keystore", f(ts.file), "-storetype", ts.typ, "-storepass", "trustpw")
		}
	}

	for _, typ := range []struct{ p12, jks string }{{"", ""}, {"PKCS12", "JKS"}} {
		jmCert, err := LoadKeyStore(f("jm.p12"), typ.p12, "jmstorepw", "")
		if err != nil {
			t.Fatalf("PKCS12 keystore (type %q): %v", typ.p12, err)
		}
		tmCert, err := LoadKeyStore(f("tm.jks"), typ.jks, "tmstorepw", "tmkeypw")
		if err != nil {
			t.Fatalf("JKS keystore (type %q): %v", typ.jks, err)
		}
		p12Roots, p12Certs, err := LoadTrustStore(f("trust.p12"), typ.p12, "trustpw")
		if err != nil || len(p12Certs) != 2 {
			t.Fatalf("PKCS12 truststore (type %q): %d certs, %v", typ.p12, len(p12Certs), err)
		}
		jksRoots, jksCerts, err := LoadTrustStore(f("trust.jks"), typ.jks, "trustpw")
		if err != nil || len(jksCerts) != 2 {
			t.Fatalf("JKS truststore (type %q): %d certs, %v", typ.jks, len(jksCerts), err)
		}

		jm := NewStoreFromMaterial(jmCert, p12Roots, Options{}, nil)
		tm := NewStoreFromMaterial(tmCert, jksRoots, Options{}, nil)
		if id, ok := tm.Identity(); !ok || id.String() != "spiffe://c1/taskmanager/tm1" {
			t.Errorf("TM identity %v %v", id, ok)
		}
		res := handshake(t, jm.ServerConfig(PeerPolicy{Allow: []Role{RoleTaskManager}}), tm.ClientConfig(PeerPolicy{Allow: []Role{RoleJobManager}}))
		if res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("handshake: server %v; client %v", res.serverErr, res.clientErr)
		}
	}

	// Through Options and NewStore, as the configuration gives them.
	st, err := NewStore(Options{Keystore: f("tm.jks"), KeystorePassword: "tmstorepw", KeyPassword: "tmkeypw",
		Truststore: f("trust.p12"), TruststorePassword: "trustpw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Certificate().Leaf.Subject.CommonName != "tm" {
		t.Errorf("NewStore loaded %s", st.Certificate().Leaf.Subject)
	}

	// Flink's docs point keystore and truststore at the same file.
	if _, certs, err := LoadTrustStore(f("jm.p12"), "", "jmstorepw"); err != nil || len(certs) != 1 {
		t.Errorf("PKCS12 keystore as truststore: %d, %v", len(certs), err)
	}
	if _, certs, err := LoadTrustStore(f("tm.jks"), "", "tmstorepw"); err != nil || len(certs) != 1 {
		t.Errorf("JKS keystore as truststore: %d, %v", len(certs), err)
	}

	for _, tc := range []struct{ path, store, key, want string }{
		{f("jm.p12"), "wrong", "", "wrong keystore password (security.ssl.internal.keystore-password)"},
		{f("tm.jks"), "wrong", "tmkeypw", "wrong keystore password (security.ssl.internal.keystore-password)"},
		{f("tm.jks"), "tmstorepw", "wrong", "wrong key password (security.ssl.internal.key-password)"},
		{f("trust.jks"), "trustpw", "", "no private key entry in JKS keystore"},
	} {
		_, err := LoadKeyStore(tc.path, "", tc.store, tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: err %v, want %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if _, _, err := LoadTrustStore(f("trust.jks"), "", "wrong"); err == nil || !strings.Contains(err.Error(), "wrong truststore password") {
		t.Errorf("JKS truststore wrong password: %v", err)
	}
}
