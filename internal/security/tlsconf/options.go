// Package tlsconf builds every tls.Config of sluice: internal mutual TLS
// (RPC, data exchange, blob) and, later, REST TLS. It reads Flink's
// security.ssl.* keys, loads PKCS12, JKS and PEM key and trust stores,
// pins fingerprints, enforces process identities (SPIFFE-form URI SANs)
// and reloads material without restart.
//
// One package owns this so that every connection gets the same checks:
// a listener that forgot one would be the weak link.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// Config key prefixes named in errors, so a user knows what to fix.
const (
	internalPrefix = "security.ssl.internal"
	restPrefix     = "security.ssl.rest"
)

// KeyVerifyHostname is Flink's switch for host name verification; on
// internal connections it is read through Options.VerifyHostname.
const KeyVerifyHostname = "security.ssl.verify-hostname"

// DefaultReloadInterval is how often a reloading Store polls its files.
const DefaultReloadInterval = 2 * time.Second

// Options are the TLS settings of one group of connections.
type Options struct {
	Keystore, KeystoreType           string
	KeystorePassword, KeyPassword    config.Secret
	Truststore, TruststoreType       string
	TruststorePassword               config.Secret
	Fingerprints                     string        // comma list, SHA-1 or SHA-256, colons and case optional
	Protocols                        []string      // "TLSv1.2", "TLSv1.3": min..max of those listed; empty = TLS 1.3 only
	CipherSuites                     []string      // IANA names, TLS 1.2 only; empty = Go's defaults
	HandshakeTimeout, SessionTimeout time.Duration // <0 = default
	SessionCacheSize                 int           // <0 = default, 0 = no session resumption
	CloseNotifyFlushTimeout          time.Duration
	Reload                           bool // security.ssl.reload
	// VerifyHostname (security.ssl.verify-hostname, internal group
	// only) makes CheckHost require the server's certificate to name
	// the host that was dialed.
	VerifyHostname bool
	ReloadInterval time.Duration // poll interval; <=0 = DefaultReloadInterval

	// KeyPrefix is the config key prefix named in errors and reasons
	// ("security.ssl.internal" or "security.ssl.rest"); empty means
	// internal. InternalOptions and RESTOptions set it.
	KeyPrefix string
	// Notes are things the caller should log once at start-up (settings
	// that are accepted but have no effect). They are not errors.
	Notes []string
}

// parsed is the validated, machine form of Options.
type parsed struct {
	minVersion, maxVersion uint16
	suites                 []uint16
	fingerprints           []Fingerprint
}

func (o Options) prefix() string {
	if o.KeyPrefix == "" {
		return internalPrefix
	}
	return o.KeyPrefix
}

func (o Options) key(suffix string) string { return o.prefix() + "." + suffix }

// InternalOptions reads the internal TLS settings: security.ssl.internal.*
// (with the legacy security.ssl.keystore etc. as fallbacks, which the
// config package applies), security.ssl.protocol, security.ssl.algorithms
// and security.ssl.reload. It validates them so a bad value fails at
// start-up with the key to fix, not at the first handshake.
func InternalOptions(cfg *config.Config) (Options, error) {
	o := readOptions(cfg, internalPrefix)
	if _, err := o.parse(); err != nil {
		return Options{}, err
	}
	// Mutual authentication: our certificate is only half of it; without
	// trust material every peer would be refused (or, worse, accepted).
	if o.Truststore == "" && o.Keystore != "" && o.Fingerprints == "" {
		return Options{}, fmt.Errorf("%s is set but %s is not: internal TLS is mutual, so each side must verify the other; set %s (it may be the keystore file itself, as in Flink's docs) or %s",
			o.key("keystore"), o.key("truststore"), o.key("truststore"), o.key("cert.fingerprint"))
	}
	if o.Keystore == "" && o.Truststore != "" {
		return Options{}, fmt.Errorf("%s is set but %s is not: internal TLS is mutual, so each side needs its own certificate",
			o.key("truststore"), o.key("keystore"))
	}
	return o, nil
}

// RESTOptions reads the REST TLS settings from security.ssl.rest.*, with
// the same shared keys as InternalOptions.
func RESTOptions(cfg *config.Config) (Options, error) {
	o := readOptions(cfg, restPrefix)
	if _, err := o.parse(); err != nil {
		return Options{}, err
	}
	if cfg.Bool("security.ssl.rest.authentication-enabled") && o.Keystore != "" && o.Truststore == "" && o.Fingerprints == "" {
		return Options{}, fmt.Errorf("security.ssl.rest.authentication-enabled requires client certificates, but neither %s nor %s is set to verify them",
			o.key("truststore"), o.key("cert.fingerprint"))
	}
	return o, nil
}

func readOptions(cfg *config.Config, prefix string) Options {
	k := func(s string) string { return prefix + "." + s }
	o := Options{
		KeyPrefix:          prefix,
		Keystore:           cfg.String(k("keystore")),
		KeystoreType:       cfg.String(k("keystore-type")),
		KeystorePassword:   cfg.Secret(k("keystore-password")),
		KeyPassword:        cfg.Secret(k("key-password")),
		Truststore:         cfg.String(k("truststore")),
		TruststoreType:     cfg.String(k("truststore-type")),
		TruststorePassword: cfg.Secret(k("truststore-password")),
		Fingerprints:       strings.Join(cfg.StringList(k("cert.fingerprint")), ","),
		Protocols:          cfg.StringList("security.ssl.protocol"),
		CipherSuites:       cfg.StringList("security.ssl.algorithms"),
		Reload:             cfg.Bool("security.ssl.reload"),
		ReloadInterval:     DefaultReloadInterval,
		HandshakeTimeout:   -1,
		SessionTimeout:     -1,
		SessionCacheSize:   -1,

		CloseNotifyFlushTimeout: -1,
	}
	// Only the internal group has Flink's tuning keys.
	if prefix == internalPrefix {
		o.HandshakeTimeout = cfg.Duration(k("handshake-timeout"))
		o.SessionTimeout = cfg.Duration(k("session-timeout"))
		o.SessionCacheSize = cfg.Int(k("session-cache-size"))
		o.CloseNotifyFlushTimeout = cfg.Duration(k("close-notify-flush-timeout"))
		o.VerifyHostname = cfg.Bool(KeyVerifyHostname)
	}
	if cfg.IsSet("security.ssl.provider") {
		o.Notes = append(o.Notes, fmt.Sprintf("security.ssl.provider (%q) is ignored: Go's TLS needs no provider", cfg.String("security.ssl.provider")))
	}
	if p, err := o.parse(); err == nil && len(o.CipherSuites) > 0 && p.minVersion == tls.VersionTLS13 {
		o.Notes = append(o.Notes, "security.ssl.algorithms is ignored by TLS 1.3, the only version security.ssl.protocol enables: TLS 1.3 suites are not configurable")
	}
	return o
}

var tlsVersions = map[string]uint16{"tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13}

// parse validates o. Errors name the key to fix.
func (o Options) parse() (parsed, error) {
	var p parsed
	for _, name := range o.Protocols {
		v, ok := tlsVersions[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return p, fmt.Errorf("security.ssl.protocol: %q is not supported: use TLSv1.2, TLSv1.3 or both", name)
		}
		if p.minVersion == 0 || v < p.minVersion {
			p.minVersion = v
		}
		p.maxVersion = max(p.maxVersion, v)
	}
	if p.minVersion == 0 {
		p.minVersion, p.maxVersion = tls.VersionTLS13, tls.VersionTLS13
	}
	for _, name := range o.CipherSuites {
		id, err := cipherSuite(strings.TrimSpace(name))
		if err != nil {
			return p, err
		}
		if id != 0 {
			p.suites = append(p.suites, id)
		}
	}
	fps, err := ParseFingerprints(o.Fingerprints)
	if err != nil {
		return p, fmt.Errorf("%s: %w", o.key("cert.fingerprint"), err)
	}
	p.fingerprints = fps
	return p, nil
}

// cipherSuite returns the ID of a TLS 1.2 suite, or 0 for a TLS 1.3 suite
// (Go does not let them be chosen, and all of them are strong).
func cipherSuite(name string) (uint16, error) {
	for _, s := range tls.CipherSuites() {
		if s.Name == name {
			if slices.Equal(s.SupportedVersions, []uint16{tls.VersionTLS13}) {
				return 0, nil
			}
			return s.ID, nil
		}
	}
	for _, s := range tls.InsecureCipherSuites() {
		if s.Name == name {
			return 0, fmt.Errorf("security.ssl.algorithms: %q is insecure and refused; remove it to use Go's modern AEAD suites", name)
		}
	}
	var names []string
	for _, s := range tls.CipherSuites() {
		names = append(names, s.Name)
	}
	return 0, fmt.Errorf("security.ssl.algorithms: unknown cipher suite %q (use IANA names, e.g. %s)", name, strings.Join(names[:min(3, len(names))], ", "))
}

// LoadKeyStore loads o's key store; errors name o's keys.
func (o Options) LoadKeyStore() (tls.Certificate, error) {
	return loadKeyStore(o.Keystore, o.KeystoreType, o.KeystorePassword.Value(), o.KeyPassword.Value(), o.prefix())
}

// LoadTrustStore loads o's trust store; errors name o's keys.
func (o Options) LoadTrustStore() (*x509.CertPool, error) {
	pool, _, err := loadTrustStore(o.Truststore, o.TruststoreType, o.TruststorePassword.Value(), o.prefix())
	return pool, err
}
