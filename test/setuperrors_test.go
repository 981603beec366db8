package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// TestStartupErrorsNameTheKeyOnce starts real JobManagers and TaskManagers
// with bad settings: each refuses to start with an error that names the key
// to fix, and names no key twice ("security.authorization.mode:
// security.authorization.mode: ..." was the bug).
func TestStartupErrorsNameTheKeyOnce(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.keytab")
	if err := os.WriteFile(loose, []byte("not a keytab"), 0o644); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errLine := regexp.MustCompile(`(?m)^error: .*$`)
	for _, tc := range []struct {
		role    string
		defines []string
		key     string
	}{
		{"jobmanager", []string{"security.authorization.mode=bogus"}, "security.authorization.mode"},
		{"jobmanager", []string{"security.authorization.mode=acl", "security.authorization.acl.policy-file=" + filepath.Join(dir, "none.yaml")}, "security.authorization.acl.policy-file"},
		{"jobmanager", []string{"security.rest.authentication.token.file=" + filepath.Join(dir, "none")}, "security.rest.authentication.token.file"},
		{"jobmanager", []string{"security.rest.authentication.kerberos.keytab=" + loose, "security.rest.authentication.kerberos.principal=HTTP/jm.example.com@EXAMPLE.COM"}, "security.rest.authentication.kerberos.keytab"},
		{"jobmanager", []string{"security.kerberos.login.keytab=" + filepath.Join(dir, "none.keytab"), "security.kerberos.login.principal=jm@EXAMPLE.COM"}, "security.kerberos.login.keytab"},
		{"jobmanager", []string{"security.ssl.rest.enabled=true", "security.ssl.rest.keystore=" + filepath.Join(dir, "none.pem")}, "security.ssl.rest.keystore"},
		{"jobmanager", []string{"security.ssl.internal.auto=true", "security.ssl.internal.auto.dir=" + filepath.Join(notADir, "ca")}, "security.ssl.internal.auto.dir"},
		{"taskmanager", []string{"security.ssl.internal.auto=true", "security.cluster.join-token-file=" + filepath.Join(dir, "none-token")}, "security.cluster.join-token-file"},
	} {
		args := []string{tc.role, "--work-dir", t.TempDir(), "-D", "rest.port=0", "-D", "jobmanager.rpc.port=0", "-D", "blob.server.port=0"}
		for _, d := range tc.defines {
			args = append(args, "-D", d)
		}
		p := startProc(t, tc.role, args...)
		if code := waitExit(t, p, 30*time.Second); code == 0 {
			t.Errorf("%s %v started", tc.role, tc.defines)
			continue
		}
		msg := errLine.FindString(p.Log())
		if !config.NamesKey(msg, tc.key) {
			t.Errorf("%s %v: the error does not name %s:\n%s", tc.role, tc.defines, tc.key, p.Log())
		}
		if rep := config.RepeatedKeys(msg); len(rep) > 0 {
			t.Errorf("%s %v: the error names %s more than once: %s", tc.role, tc.defines, strings.Join(rep, ", "), msg)
		}
	}
}
