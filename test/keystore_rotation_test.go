package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (make deps installs it)", tool)
		}
		t.Skipf("%s not installed", tool)
	}
}

// TestInternalTLSKeytool: keystores written by the JDK's keytool, set up
// exactly as Flink's security guide does (one self-signed key pair in a
// keystore that is also the trust store), in PKCS12 and JKS, work unchanged.
func TestInternalTLSKeytool(t *testing.T) {
	needTool(t, "keytool")
	for _, typ := range []string{"PKCS12", "JKS"} {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			ks := filepath.Join(dir, "internal.keystore")
			args := []string{"-genkeypair", "-alias", "flink.internal", "-keystore", ks, "-dname", "CN=flink.internal",
				"-storepass", "internal_store_password", "-keyalg", "RSA", "-keysize", "2048", "-storetype", typ, "-validity", "30"}
			keyPass := "internal_store_password"
			if typ == "JKS" {
				keyPass = "internal_key_password"
				args = append(args, "-keypass", keyPass)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if out, err := exec.CommandContext(ctx, "keytool", args...).CombinedOutput(); err != nil {
				t.Fatalf("keytool: %v\n%s", err, out)
			}
			c := startCluster(t, 2, 2, "security.ssl.internal.enabled=true",
				"security.ssl.internal.keystore="+ks, "security.ssl.internal.truststore="+ks,
				"security.ssl.internal.keystore-password=internal_store_password",
				"security.ssl.internal.truststore-password=internal_store_password",
				"security.ssl.internal.key-password="+keyPass)
			runWordcount(t, c, "4")
			// A wrong password is a start-up error that names the key.
			_, stderr, code := runSluice(ctx, t, "jobmanager", "-D", "security.ssl.internal.enabled=true",
				"-D", "security.ssl.internal.keystore="+ks, "-D", "security.ssl.internal.truststore="+ks,
				"-D", "security.ssl.internal.keystore-password=wrong", "-D", "security.ssl.internal.truststore-password=wrong")
			if code == 0 || !regexpMatch(`password.*security\.ssl\.internal\.(keystore|truststore)-password|security\.ssl\.internal\.(keystore|truststore)-password.*password`, stderr) {
				t.Errorf("wrong password: exit %d, stderr %q", code, stderr)
			}
		})
	}
}

// TestInternalTLSRotation: certificates replaced on disk while an endless
// job runs (security.ssl.reload); the job keeps running and a new
// connection presents the new certificate.
func TestInternalTLSRotation(t *testing.T) {
	t.Parallel()
	dir := createCerts(t, "c1", "tm-1", "tm-2")
	c := startClusterWith(t, identitySpec(dir, filepath.Join(dir, "truststore.pem"), 2, "security.ssl.reload=true"))
	id := submitUnbounded(t, c, "2", "2000")
	var tms map[string][]map[string]any
	if err := c.get("/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	var data string
	for _, tm := range tms["taskmanagers"] {
		if tm["id"] == "tm-1" {
			data = tm["dataAddress"].(string)
		}
	}
	client := keyPair(t, filepath.Join(dir, "taskmanager-tm-2.pem"))
	serial := func() string {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", data,
			&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{client}})
		if err != nil {
			t.Fatalf("dial data port: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()

	// Issue a new certificate for tm-1 and replace its file atomically.
	ours := loadPKI(t, dir)
	now := time.Now()
	fresh := ours.issue(t, "spiffe://c1/taskmanager/tm-1", now.Add(-time.Hour), now.Add(48*time.Hour))
	var buf []byte
	for _, der := range fresh.Certificate {
		buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kd, _ := x509.MarshalECPrivateKey(fresh.PrivateKey.(*ecdsa.PrivateKey))
	buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})...)
	target := filepath.Join(dir, "taskmanager-tm-1.pem")
	tmp := target + ".new"
	if err := os.WriteFile(tmp, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(fresh.Certificate[0])
	c.waitFor(15*time.Second, "new certificate presented", func() bool { return serial() == leaf.SerialNumber.String() })
	if before == leaf.SerialNumber.String() {
		t.Fatal("serials equal before rotation")
	}
	// The job was not interrupted.
	j := c.job(id)
	if j["state"] != "RUNNING" || j["restarts"].(float64) != 0 {
		t.Fatalf("job after rotation: state %v, restarts %v (%v)", j["state"], j["restarts"], j["failure-cause"])
	}
	n := readRecords(j)
	c.waitFor(10*time.Second, "records still flowing", func() bool { return readRecords(c.job(id)) > n })
}
