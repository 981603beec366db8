package kerberos_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

func TestConfigFrom(t *testing.T) {
	cfg := config.New()
	for k, v := range map[string]string{
		"security.kerberos.login.principal":             "sluice/jm@SLUICE.TEST",
		"security.kerberos.login.keytab":                "/etc/sluice/sluice.keytab",
		"security.kerberos.login.contexts":              "KafkaClient,RestServer",
		"security.kerberos.relogin.period":              "30 s",
		"security.kerberos.krb5-conf.path":              "/etc/sluice/krb5.conf",
		"security.kerberos.login.allow-insecure-keytab": "true",
	} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	c, err := kerberos.ConfigFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Principal != "sluice/jm@SLUICE.TEST" || c.Keytab != "/etc/sluice/sluice.keytab" || !c.UseTicketCache ||
		c.Krb5Conf != "/etc/sluice/krb5.conf" || c.ReloginPeriod != 30*time.Second ||
		!slices.Equal(c.Contexts, []string{"KafkaClient", "RestServer"}) || !c.AllowInsecureKeytab || !c.Enabled() {
		t.Errorf("ConfigFrom = %+v", c)
	}

	// Defaults: Flink's one-minute relogin, ticket cache on, nothing enabled.
	c, err = kerberos.ConfigFrom(config.New())
	if err != nil || c.ReloginPeriod != time.Minute || !c.UseTicketCache || c.AllowInsecureKeytab || c.Enabled() {
		t.Errorf("defaults = %+v, %v", c, err)
	}

	bad := config.New()
	bad.Set("security.kerberos.login.keytab", "/k")
	if _, err := kerberos.ConfigFrom(bad); err == nil || !strings.Contains(err.Error(), "security.kerberos.login.principal") {
		t.Errorf("keytab without principal: %v", err)
	}
	bad = config.New()
	bad.Set("security.kerberos.principal-to-local", "RULE:[1:$1](x")
	if _, err := kerberos.ConfigFrom(bad); err == nil || !strings.Contains(err.Error(), "security.kerberos.principal-to-local") {
		t.Errorf("bad rule: %v", err)
	}
}

func TestLoadKrb5Conf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "krb5.conf")
	os.WriteFile(path, []byte(`include /etc/krb5.conf.d/extra.conf
includedir /etc/krb5.conf.d/
[libdefaults]
	default_realm = SLUICE.TEST
[realms]
	SLUICE.TEST = {
		kdc = 127.0.0.1:8888
	}
`), 0o644)

	cfg, resolved, warnings, err := kerberos.LoadKrb5Conf(path)
	if err != nil {
		t.Fatal(err)
	}
	if resolved != path || cfg.LibDefaults.DefaultRealm != "SLUICE.TEST" {
		t.Errorf("resolved %q, realm %q", resolved, cfg.LibDefaults.DefaultRealm)
	}
	joined := strings.Join(warnings, "\n")
	for _, want := range []string{path + ":1: include is ignored", path + ":2: includedir is ignored", "security.kerberos.krb5-conf.path"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}

	// Empty path: KRB5_CONFIG, else /etc/krb5.conf.
	t.Setenv("KRB5_CONFIG", path)
	if _, resolved, _, err := kerberos.LoadKrb5Conf(""); err != nil || resolved != path {
		t.Errorf("KRB5_CONFIG: %q, %v", resolved, err)
	}
	t.Setenv("KRB5_CONFIG", "")
	if got := kerberos.ResolveKrb5Conf(""); got != "/etc/krb5.conf" {
		t.Errorf("default %q", got)
	}
	_, _, _, err = kerberos.LoadKrb5Conf(filepath.Join(dir, "missing.conf"))
	if err == nil || !strings.Contains(err.Error(), "security.kerberos.krb5-conf.path") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckKeytabFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.keytab")
	os.WriteFile(path, []byte{5, 2}, 0o600)
	if err := kerberos.CheckKeytabFile(path, false); err != nil {
		t.Errorf("0600: %v", err)
	}
	os.Chmod(path, 0o644)
	err := kerberos.CheckKeytabFile(path, false)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) || !strings.Contains(err.Error(), "allow-insecure-keytab") {
		t.Errorf("0644: %v", err)
	}
	if err := kerberos.CheckKeytabFile(path, true); err != nil {
		t.Errorf("allowed: %v", err)
	}
	if err := kerberos.CheckKeytabFile(filepath.Join(t.TempDir(), "none"), false); err == nil || !strings.Contains(err.Error(), "security.kerberos.login.keytab") {
		t.Errorf("missing: %v", err)
	}
}
