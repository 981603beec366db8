package test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInternalTLSVerifyHostname: with security.ssl.verify-hostname at its
// default (true), a TaskManager that dials the JobManager by a name the
// JobManager's certificate does not carry is refused, with an error that
// names the host and the key; with security.ssl.verify-hostname: false the
// same cluster forms and each process warns once that host names are not
// checked.
func TestInternalTLSVerifyHostname(t *testing.T) {
	// Certificates for "localhost" only: the harness dials 127.0.0.1.
	dir := filepath.Join(t.TempDir(), "certs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, stderr, code := runSluice(ctx, t, "security", "create-certs", "--out", dir, "--cluster-id", "c1",
		"--taskmanager-ids", "tm-1", "--hosts", "localhost"); code != 0 {
		t.Fatalf("create-certs: %s %s", out, stderr)
	}
	truststore := filepath.Join(dir, "truststore.pem")
	const warning = "internal connections do not verify host names (security.ssl.verify-hostname: false)"

	t.Run("default refuses a host the certificate does not name", func(t *testing.T) {
		c := startClusterWith(t, identitySpec(dir, truststore, 0))
		tm := c.addTM()
		c.waitFor(45*time.Second, "the TaskManager reports the host name mismatch", func() bool {
			// The error is quoted in the log, possibly more than once.
			return regexpMatch(`does not name host \W*127\.0\.0\.1\W* that was dialed`, tm.Log())
		})
		log := tm.Log()
		if !strings.Contains(log, "security.ssl.verify-hostname") {
			t.Errorf("the error does not name security.ssl.verify-hostname:\n%s", log)
		}
		var o map[string]any
		if err := c.get("/overview", &o); err != nil || int(o["taskmanagers"].(float64)) != 0 {
			t.Errorf("a TaskManager registered over a connection to a host its certificate does not name: %v %v", o, err)
		}
		if strings.Contains(c.jm.Log(), warning) {
			t.Errorf("the JobManager warns that host names are not verified, but they are")
		}
	})

	t.Run("false connects and warns", func(t *testing.T) {
		c := startClusterWith(t, identitySpec(dir, truststore, 1, "security.ssl.verify-hostname=false"))
		runWordcount(t, c, "1")
		for name, p := range map[string]*proc{"JobManager": c.jm, "TaskManager": c.tms[0]} {
			if n := strings.Count(p.Log(), warning); n != 1 {
				t.Errorf("the %s logs the warning %d times, want once:\n%s", name, n, p.Log())
			}
		}
	})
}
