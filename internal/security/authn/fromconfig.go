package authn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/config"
)

// Keys of the failed-authentication limiter.
const (
	FailuresMaxKey        = "security.rest.authentication.failures.max"
	FailuresWindowKey     = "security.rest.authentication.failures.window"
	FailuresIPv4PrefixKey = "security.rest.authentication.failures.ipv4-prefix"
	FailuresIPv6PrefixKey = "security.rest.authentication.failures.ipv6-prefix"
)

// ConfigOptions tell FromConfig what the server it builds for can offer.
type ConfigOptions struct {
	// TLS is whether any listener of the server uses TLS, so client
	// certificates can be offered at all.
	TLS bool
	Log *slog.Logger
}

// Authenticators are the authentication building blocks a server's
// configuration describes, shared by its listeners: pass Deps to Build
// with each listener's `authentication:` list.
type Authenticators struct {
	Deps
	// TokenFile is the bearer-token file, nil when none is configured;
	// its owner calls Run (via Authenticators.Run) and may call Reload.
	TokenFile *TokenFile
}

// FromConfig builds the authenticators that security.rest.authentication.*
// configures: client certificates (with the principal mapping rules) when
// o.TLS, the token file and the Kerberos (SPNEGO) acceptor when their keys
// are set. Errors name the key to fix. Nothing is started: call Run.
func FromConfig(cfg *config.Config, o ConfigOptions) (*Authenticators, error) {
	a := &Authenticators{}
	if o.TLS {
		mapper, err := ParsePrincipalRules(cfg.String(RulesKey))
		if err != nil {
			return nil, err
		}
		a.X509 = NewX509(mapper)
	}
	if path := cfg.String(TokenFileKey); path != "" {
		tf, err := NewTokenFile(path, o.Log)
		if err != nil {
			return nil, err
		}
		a.TokenFile, a.Token = tf, tf
	}
	if path := cfg.String(KerberosKeytabKey); path != "" {
		k, err := NewKerberos(KerberosOptions{
			Keytab:              path,
			Principal:           cfg.String(KerberosPrincipalKey),
			AllowInsecureKeytab: cfg.Bool("security.kerberos.login.allow-insecure-keytab"),
			Rules:               cfg.StringList("security.kerberos.principal-to-local"),
		})
		if err != nil {
			return nil, err
		}
		a.Kerberos = k
	}
	return a, nil
}

// Run keeps the authenticators fresh (the token file's watcher) until ctx
// is done.
func (a *Authenticators) Run(ctx context.Context) {
	if a.TokenFile != nil {
		a.TokenFile.Run(ctx)
	}
}

// FailureLimiterFromConfig builds the failed-authentication limiter from
// security.rest.authentication.failures.*.
func FailureLimiterFromConfig(cfg *config.Config) (*FailureLimiter, error) {
	o := LimiterOptions{Max: cfg.Int(FailuresMaxKey), Window: cfg.Duration(FailuresWindowKey),
		IPv4Prefix: cfg.Int(FailuresIPv4PrefixKey), IPv6Prefix: cfg.Int(FailuresIPv6PrefixKey)}
	if o.IPv4Prefix < 8 || o.IPv4Prefix > 32 {
		return nil, fmt.Errorf("%s: %d: want a prefix length from 8 to 32 (32 counts each IPv4 address alone)", FailuresIPv4PrefixKey, o.IPv4Prefix)
	}
	if o.IPv6Prefix < 32 || o.IPv6Prefix > 128 {
		return nil, fmt.Errorf("%s: %d: want a prefix length from 32 to 128 (64, the default, is one IPv6 subnet)", FailuresIPv6PrefixKey, o.IPv6Prefix)
	}
	return NewFailureLimiter(o), nil
}
