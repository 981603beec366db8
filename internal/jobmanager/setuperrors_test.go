package jobmanager

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

// Start-up errors name the key to fix once: an error wrapping one that
// already names its key does not prefix the key again
// ("security.authorization.mode: security.authorization.mode: ...").
func TestSetupErrorsNameTheKeyOnce(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		settings map[string]string
		key      string // the key the error must name
	}{
		{map[string]string{"security.authorization.mode": "bogus"}, "security.authorization.mode"},
		{map[string]string{"security.authorization.mode": "allow-all, allow-all"}, "security.authorization.mode"},
		{map[string]string{"security.authorization.mode": "acl"}, "security.authorization.acl.policy-file"},
		{map[string]string{"security.authorization.mode": "acl", "security.authorization.acl.policy-file": "/nonexistent/policy.yaml"}, "security.authorization.acl.policy-file"},
		{map[string]string{"security.authorization.mode": "acl", "security.authorization.acl.policy-file": garbage}, "security.authorization.acl.policy-file"},
		{map[string]string{"security.authorization.mode": "webhook"}, "security.authorization.webhook.url"},
		{map[string]string{"security.rest.authentication.token.file": "/nonexistent/tokens"}, "security.rest.authentication.token.file"},
		{map[string]string{"security.rest.authentication.kerberos.keytab": "/nonexistent/http.keytab", "security.rest.authentication.kerberos.principal": "HTTP/jm.example.com@EXAMPLE.COM"}, "security.rest.authentication.kerberos.keytab"},
		{map[string]string{"security.rest.authentication.kerberos.keytab": garbage, "security.rest.authentication.kerberos.principal": "HTTP/jm.example.com@EXAMPLE.COM"}, "security.rest.authentication.kerberos.keytab"},
		{map[string]string{"security.rest.authentication.kerberos.keytab": garbage}, "security.rest.authentication.kerberos.principal"},
		{map[string]string{"rest.listeners": `[{name: k, address: "127.0.0.1:0", authentication: [kerberos]}]`}, "security.rest.authentication.kerberos.keytab"},
		{map[string]string{"rest.listeners": "garbage"}, "rest.listeners"},
		{map[string]string{"security.kerberos.login.keytab": "/nonexistent/jm.keytab", "security.kerberos.login.principal": "jm@EXAMPLE.COM"}, "security.kerberos.login.keytab"},
		{map[string]string{"security.kerberos.principal-to-local": "RULE:bad"}, "security.kerberos.principal-to-local"},
		{map[string]string{"security.ssl.rest.enabled": "true", "security.ssl.rest.keystore": "/nonexistent/rest.pem"}, "security.ssl.rest.keystore"},
		{map[string]string{"jobstore.expiration-time": "soon"}, "jobstore.expiration-time"},
		{map[string]string{"security.rest.session.idle-timeout": "2 h", "security.rest.session.absolute-timeout": "1 h"}, "security.rest.session.idle-timeout"},
	} {
		err := startupError(t, tc.settings)
		if err == nil {
			t.Errorf("%v: the JobManager started", tc.settings)
			continue
		}
		if !config.NamesKey(err.Error(), tc.key) {
			t.Errorf("%v: the error does not name %s: %v", tc.settings, tc.key, err)
		}
		if rep := config.RepeatedKeys(err.Error()); len(rep) > 0 {
			t.Errorf("%v: the error names %v more than once: %v", tc.settings, rep, err)
		}
	}
}

// startupError builds and starts a JobManager with settings and returns the
// error that stopped it, nil if it started (it is stopped again at once).
func startupError(t *testing.T, settings map[string]string) error {
	t.Helper()
	cfg := config.New()
	for k, v := range map[string]string{"rest.port": "0", "rest.address": "127.0.0.1", "jobmanager.rpc.port": "0", "blob.server.port": "0", "jobmanager.bind-host": "127.0.0.1"} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range settings {
		if err := cfg.Set(k, v); err != nil {
			return err
		}
	}
	jm, err := New(Options{Config: cfg, WorkDir: t.TempDir()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a JobManager that starts stops at once
	return jm.Run(ctx)
}
