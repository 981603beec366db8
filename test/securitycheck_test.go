package test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/test/kdc"
)

// TestSecurityCheckRefusesWhatStartupRefuses: for each configuration a
// JobManager or TaskManager refuses at start, `sluice security check`
// exits non-zero with a [FAIL] line carrying the error start-up prints,
// and the process, started with the same configuration, exits with that
// same error. The check runs start-up's own validation, so the two cannot
// drift apart.
func TestSecurityCheckRefusesWhatStartupRefuses(t *testing.T) {
	certs := createCertsHosts(t, "localhost,127.0.0.1")
	ca := filepath.Join(certs, "ca.crt")
	p12 := filepath.Join(certs, "internal.p12")
	looseKey := filepath.Join(certs, "checkpoint.key")
	if err := os.WriteFile(looseKey, make([]byte, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(looseKey, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		role    string // jobmanager or taskmanager
		yaml    string
		defines []string
		want    string // part of the error both print
	}{
		{name: "truststore without keystore", role: "jobmanager",
			defines: []string{"security.ssl.internal.enabled=true", "security.ssl.internal.truststore=" + ca},
			want:    "security.ssl.internal.truststore is set but security.ssl.internal.keystore is not"},
		{name: "taskmanager truststore without keystore", role: "taskmanager",
			defines: []string{"security.ssl.internal.enabled=true", "security.ssl.internal.truststore=" + ca},
			want:    "security.ssl.internal.truststore is set but security.ssl.internal.keystore is not"},
		{name: "taskmanager metrics off loopback without TLS", role: "taskmanager",
			defines: []string{"taskmanager.metrics.bind-host=0.0.0.0"},
			want:    "taskmanager.metrics.bind-host is \"0.0.0.0\", which is not loopback"},
		{name: "bad keystore password", role: "jobmanager",
			defines: []string{"security.ssl.internal.enabled=true", "security.ssl.internal.keystore=" + p12,
				"security.ssl.internal.keystore-type=PKCS12", "security.ssl.internal.keystore-password=wrong",
				"security.ssl.internal.truststore=" + filepath.Join(certs, "truststore.pem")},
			want: p12},
		{name: "unreadable keytab", role: "jobmanager",
			defines: []string{"security.kerberos.login.keytab=" + filepath.Join(certs, "missing.keytab")},
			want:    "security.kerberos.login.keytab is set but security.kerberos.login.principal is not"},
		{name: "bad authorization mode", role: "jobmanager",
			defines: []string{"security.authorization.mode=nosuchmode"},
			want:    "security.authorization.mode"},
		{name: "bad listener", role: "jobmanager",
			yaml: "rest.listeners:\n  - name: api\n    address: 127.0.0.1:0\n    authentication: [token]\n",
			want: "authentication token needs security.rest.authentication.token.file"},
		{name: "readable checkpoint key", role: "jobmanager",
			defines: []string{"state.checkpoints.encryption.key-file=" + looseKey},
			want:    "state.checkpoints.encryption.key-file " + looseKey + ": mode 0644 lets group or others access the checkpoint key"},
		{name: "taskmanager readable checkpoint key", role: "taskmanager",
			defines: []string{"state.checkpoints.encryption.key-file=" + looseKey},
			want:    "state.checkpoints.encryption.key-file " + looseKey + ": mode 0644 lets group or others access the checkpoint key"},
		{name: "REST TLS without keystore", role: "jobmanager",
			defines: []string{"security.ssl.rest.enabled=true"},
			want:    "security.ssl.rest.enabled is true but security.ssl.rest.keystore is not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(conf, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"--config", conf}
			for _, d := range tc.defines {
				args = append(args, "-D", d)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, stderr, code := runSluice(ctx, t, append([]string{"security", "check", "--role", tc.role}, args...)...)
			if code == 0 {
				t.Fatalf("security check exit 0:\n%s%s", out, stderr)
			}
			prefix := "[FAIL] JobManager start-up: "
			if tc.role == "taskmanager" {
				prefix = "[FAIL] TaskManager start-up: "
			}
			var msg string
			for _, line := range strings.Split(out, "\n") {
				if rest, ok := strings.CutPrefix(line, prefix); ok {
					msg, _, _ = strings.Cut(rest, " -> fix: ")
				}
			}
			if msg == "" || !strings.Contains(msg, tc.want) {
				t.Fatalf("no %q line with %q:\n%s", prefix, tc.want, out)
			}

			// Start-up, with the same configuration, stops with the
			// same error.
			procArgs := append([]string{tc.role}, args...)
			procArgs = append(procArgs, "-D", "jobmanager.rpc.port="+strconv.Itoa(freePort(t)), "-D", "rest.port="+strconv.Itoa(freePort(t)),
				"-D", "taskmanager.registration.timeout=2s")
			p := startProc(t, tc.role, procArgs...)
			select {
			case <-p.done:
			case <-time.After(45 * time.Second):
				t.Fatalf("%s did not refuse to start:\n%s", tc.role, p.Log())
			}
			if p.cmd.ProcessState.ExitCode() == 0 {
				t.Fatalf("%s exit 0:\n%s", tc.role, p.Log())
			}
			if !strings.Contains(p.Log(), msg) {
				t.Fatalf("%s's error differs from the check's %q:\n%s", tc.role, msg, p.Log())
			}
		})
	}
}

// TestSecurityCheckPassesWhatStartupAccepts: the repository's
// conf/config.yaml passes the check (docs/kerberos.md runs it).
func TestSecurityCheckPassesWhatStartupAccepts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, code := runSluice(ctx, t, "security", "check", "--config", "conf/config.yaml", "--warn-days", "30")
	if code != 0 || strings.Contains(out, "[FAIL]") {
		t.Fatalf("exit %d:\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"[ OK ] JobManager start-up", "[ OK ] TaskManager start-up"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestSecurityCheckTicketCache: `sluice security check` reads the ticket
// cache the processes read: default_ccache_name from krb5.conf when
// KRB5CCNAME is unset, and DIR: collections. Its start-up validation logs
// in from that cache, as the JobManager does.
func TestSecurityCheckTicketCache(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	pw := k.AddPrincipal(t, "alice")
	coll := t.TempDir()
	tests := []struct {
		name, ccname, file string
	}{
		// The test KDC's krb5.conf sets default_ccache_name to this file.
		{name: "default_ccache_name", file: filepath.Join(k.Dir, "default.ccache")},
		{name: "DIR collection", ccname: "DIR:" + coll, file: filepath.Join(coll, "tkt-alice")},
	}
	if err := os.WriteFile(filepath.Join(coll, "primary"), []byte("tkt-alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.Kinit(t, "alice", pw, tc.file)
			conf := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(conf, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			p := startProcWith(t, procOptions{name: "security-check", env: []string{"KRB5CCNAME=" + tc.ccname, "KRB5_CONFIG=" + k.Krb5Conf}},
				"security", "check", "--role", "jobmanager", "--config", conf,
				"-D", "security.kerberos.krb5-conf.path="+k.Krb5Conf, "-D", "security.kerberos.login.principal=alice@"+k.Realm,
				"-D", "security.kerberos.login.contexts=KafkaClient")
			select {
			case <-p.done:
			case <-time.After(time.Minute):
				t.Fatalf("security check did not finish:\n%s", p.Log())
			}
			out := p.Log()
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			for _, want := range []string{"[ OK ] JobManager start-up", "the TGT in " + tc.file + " "} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
