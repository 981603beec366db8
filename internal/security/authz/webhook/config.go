package webhook

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

const prefix = "security.authorization.webhook."

// FromConfig builds a Webhook from the security.authorization.webhook.*
// keys.
func FromConfig(cfg *config.Config, log *slog.Logger) (*Webhook, error) {
	if cfg.String(prefix+"url") == "" {
		return nil, fmt.Errorf("authorization webhook: set %surl to the https URL of the authorization service", prefix)
	}
	tc, err := ClientTLS(cfg, prefix)
	if err != nil {
		return nil, fmt.Errorf("authorization webhook: %w", err)
	}
	return New(Options{
		URL:             cfg.String(prefix + "url"),
		Timeout:         cfg.Duration(prefix + "timeout"),
		CacheTTLAllowed: ttl(cfg.Duration(prefix + "cache-ttl.allowed")),
		CacheTTLDenied:  ttl(cfg.Duration(prefix + "cache-ttl.denied")),
		FailurePolicy:   cfg.String(prefix + "failure-policy"),
		TLS:             tc,
		Log:             log,
	})
}

// ttl maps the configured "0: no caching" to Options' "negative: no
// caching" (zero there means the default).
func ttl(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// ClientTLS builds the client TLS configuration from the keys
// <p>truststore(-password,-type) and, when <p>keystore is set,
// <p>keystore(-password,-type) and <p>key-password. An unset trust store
// means the system roots. The OPA authorizer shares it.
func ClientTLS(cfg *config.Config, p string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if path := cfg.String(p + "truststore"); path != "" {
		pool, _, err := tlsconf.LoadTrustStore(path, cfg.String(p+"truststore-type"), cfg.String(p+"truststore-password"))
		if err != nil {
			return nil, fmt.Errorf("load trust store %s (%struststore): %w", path, p, err)
		}
		tc.RootCAs = pool
	}
	if _, ok := config.Lookup(p + "keystore"); !ok {
		return tc, nil
	}
	if path := cfg.String(p + "keystore"); path != "" {
		cert, err := tlsconf.LoadKeyStore(path, cfg.String(p+"keystore-type"), cfg.String(p+"keystore-password"), cfg.String(p+"key-password"))
		if err != nil {
			return nil, fmt.Errorf("load key store %s (%skeystore): %w", path, p, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
