// Package kerberos is sluice's Kerberos login service over gokrb5: one
// login per process, from a keytab or from the ticket cache kinit wrote,
// relogin before the ticket lapses, and Kerberos clients handed to the
// configured login contexts (KafkaClient, PostgresClient, RestServer) and
// to no other. It also maps principals to local user names
// (security.kerberos.principal-to-local).
//
// gokrb5 reads neither KRB5_CONFIG nor KRB5CCNAME: this package resolves
// both as MIT tools do, so sluice behaves like kinit and klist on the same
// machine.
package kerberos

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"time"

	krb5config "github.com/jcmturner/gokrb5/v8/config"

	"github.com/sluice-dev/sluice/internal/config"
)

// Configuration keys this package reads (see internal/config/keys.go).
const (
	KeyPrincipal           = "security.kerberos.login.principal"
	KeyKeytab              = "security.kerberos.login.keytab"
	KeyUseTicketCache      = "security.kerberos.login.use-ticket-cache"
	KeyContexts            = "security.kerberos.login.contexts"
	KeyReloginPeriod       = "security.kerberos.relogin.period"
	KeyKrb5Conf            = "security.kerberos.krb5-conf.path"
	KeyAllowInsecureKeytab = "security.kerberos.login.allow-insecure-keytab"
	KeyPrincipalToLocal    = "security.kerberos.principal-to-local"
)

// DefaultReloginPeriod is Flink's default for security.kerberos.relogin.period.
const DefaultReloginPeriod = time.Minute

// DefaultKrb5Conf is where MIT looks when neither the config nor
// KRB5_CONFIG names a krb5.conf.
const DefaultKrb5Conf = "/etc/krb5.conf"

// Config is the Kerberos login configuration of a process.
type Config struct {
	// Principal to log in as, "alice@REALM" or "alice" (default realm).
	// Required with a keytab; with the ticket cache it must match the
	// cache's principal when set.
	Principal string
	// Keytab is the path of the keytab file; when set it wins over the
	// ticket cache.
	Keytab string
	// UseTicketCache logs in from the ticket cache (kinit) when no
	// keytab is configured.
	UseTicketCache bool
	// Krb5Conf is the krb5.conf path; empty means $KRB5_CONFIG, else
	// /etc/krb5.conf.
	Krb5Conf string
	// ReloginPeriod is the time between keytab relogins and between
	// checks of the ticket cache; DefaultReloginPeriod when zero.
	ReloginPeriod time.Duration
	// Contexts name the consumers that may get a Kerberos client.
	Contexts []string
	// AllowInsecureKeytab accepts a keytab readable by group or others.
	AllowInsecureKeytab bool
	// PrincipalToLocal are the auth_to_local rules (see ParseRules).
	PrincipalToLocal []string
}

// ConfigFrom reads the security.kerberos.* keys and validates them.
func ConfigFrom(cfg *config.Config) (Config, error) {
	c := Config{
		Principal:           cfg.String(KeyPrincipal),
		Keytab:              cfg.String(KeyKeytab),
		UseTicketCache:      cfg.Bool(KeyUseTicketCache),
		Krb5Conf:            cfg.String(KeyKrb5Conf),
		ReloginPeriod:       cfg.Duration(KeyReloginPeriod),
		Contexts:            cfg.StringList(KeyContexts),
		AllowInsecureKeytab: cfg.Bool(KeyAllowInsecureKeytab),
		PrincipalToLocal:    cfg.StringList(KeyPrincipalToLocal),
	}
	return c, c.Validate()
}

// Validate reports configuration errors, naming the key to fix.
func (c Config) Validate() error {
	if c.Keytab != "" && c.Principal == "" {
		return fmt.Errorf("kerberos: %s is set but %s is not: name the principal whose key the keytab holds", KeyKeytab, KeyPrincipal)
	}
	if c.ReloginPeriod < 0 {
		return fmt.Errorf("kerberos: %s must not be negative", KeyReloginPeriod)
	}
	if _, err := ParseRules(c.PrincipalToLocal); err != nil {
		return fmt.Errorf("kerberos: %s: %w", KeyPrincipalToLocal, err)
	}
	return nil
}

// Enabled reports whether the configuration asks for a Kerberos login: a
// principal or keytab is set, or some login context wants a client.
// use-ticket-cache alone (true by default, as in Flink) does not.
func (c Config) Enabled() bool {
	return c.Principal != "" || c.Keytab != "" || len(c.Contexts) > 0
}

func (c Config) reloginPeriod() time.Duration {
	if c.ReloginPeriod <= 0 {
		return DefaultReloginPeriod
	}
	return c.ReloginPeriod
}

// includeLine matches the include directives MIT supports and gokrb5 skips.
var includeLine = regexp.MustCompile(`^\s*(include|includedir|module)\s+\S`)

// ResolveKrb5Conf returns the krb5.conf path MIT tools would use: path,
// else $KRB5_CONFIG (its first entry: MIT accepts a colon-separated
// list), else /etc/krb5.conf.
func ResolveKrb5Conf(path string) string {
	return ResolveKrb5ConfEnv(path, os.Getenv)
}

// ResolveKrb5ConfEnv is ResolveKrb5Conf with the environment read through
// getenv.
func ResolveKrb5ConfEnv(path string, getenv func(string) string) string {
	if path != "" {
		return path
	}
	if env := getenv("KRB5_CONFIG"); env != "" {
		for i := 0; i < len(env); i++ {
			if env[i] == ':' {
				return env[:i]
			}
		}
		return env
	}
	return DefaultKrb5Conf
}

// LoadKrb5Conf loads the krb5.conf at path (resolved by ResolveKrb5Conf)
// and returns it with the resolved path and warnings: gokrb5 ignores
// include and includedir, so settings from included files are silently
// missing.
func LoadKrb5Conf(path string) (*krb5config.Config, string, []string, error) {
	return LoadKrb5ConfEnv(path, os.Getenv)
}

// LoadKrb5ConfEnv is LoadKrb5Conf with the environment read through getenv.
func LoadKrb5ConfEnv(path string, getenv func(string) string) (*krb5config.Config, string, []string, error) {
	resolved := ResolveKrb5ConfEnv(path, getenv)
	data, err := os.ReadFile(resolved)
	if err != nil {
		return nil, resolved, nil, fmt.Errorf("kerberos: read krb5.conf %s (%s, else KRB5_CONFIG, else %s): %w", resolved, KeyKrb5Conf, DefaultKrb5Conf, err)
	}
	var warnings []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if m := includeLine.FindStringSubmatch(sc.Text()); m != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %s is ignored (gokrb5 does not support it): put the settings sluice needs in this file, or point %s at a self-contained krb5.conf", resolved, n, m[1], KeyKrb5Conf))
		}
	}
	cfg, err := krb5config.NewFromString(string(data))
	if err != nil {
		if _, ok := err.(krb5config.UnsupportedDirective); !ok {
			return nil, resolved, warnings, fmt.Errorf("kerberos: parse krb5.conf %s: %w", resolved, err)
		}
		warnings = append(warnings, fmt.Sprintf("%s: %v", resolved, err))
	}
	return cfg, resolved, warnings, nil
}
