package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// ConfigLayer is what a client takes from the cluster configuration
// (--config and -D), as Flink's CLI does: where the REST API is
// (rest.address, rest.port, security.ssl.rest.enabled) and the REST TLS
// material (security.ssl.rest.truststore, and the keystore as a client
// certificate when security.ssl.rest.authentication-enabled is set).
// Contexts, the environment and the command's flags override it.
type ConfigLayer struct {
	// URL is set when rest.address, rest.port or security.ssl.rest.enabled
	// is set; empty otherwise.
	URL string
	// RootCAs is security.ssl.rest.truststore; From names the key.
	RootCAs     *x509.CertPool
	RootCAsFrom string
	// Certificate is security.ssl.rest.keystore, with
	// security.ssl.rest.authentication-enabled.
	Certificate     *tls.Certificate
	CertificateFrom string
	// SkipHostnameCheck is security.ssl.verify-hostname: false.
	SkipHostnameCheck bool
	// RetryAttempts and RetryDelay are rest.retry.max-attempts and
	// rest.retry.delay.
	RetryAttempts int
	RetryDelay    time.Duration
}

// LayerFromConfig reads the client's keys from cfg. Stores are loaded now,
// so a wrong password or path fails before any request, naming the key.
func LayerFromConfig(cfg *config.Config) (*ConfigLayer, error) {
	l := &ConfigLayer{
		SkipHostnameCheck: !cfg.Bool("security.ssl.verify-hostname"),
		RetryAttempts:     cfg.Int("rest.retry.max-attempts"),
		RetryDelay:        cfg.Duration("rest.retry.delay"),
	}
	if cfg.IsSet("rest.address") || cfg.IsSet("rest.port") || cfg.IsSet("security.ssl.rest.enabled") {
		scheme := "http"
		if cfg.Bool("security.ssl.rest.enabled") {
			scheme = "https"
		}
		l.URL = scheme + "://" + net.JoinHostPort(cfg.String("rest.address"), strconv.Itoa(cfg.Int("rest.port")))
	}
	o, err := tlsconf.RESTOptions(cfg)
	if err != nil {
		return nil, err
	}
	if o.Truststore != "" {
		pool, err := o.LoadTrustStore()
		if err != nil {
			return nil, err
		}
		l.RootCAs, l.RootCAsFrom = pool, "security.ssl.rest.truststore "+o.Truststore
	}
	if o.Keystore != "" && cfg.Bool("security.ssl.rest.authentication-enabled") {
		cert, err := o.LoadKeyStore()
		if err != nil {
			return nil, err
		}
		l.Certificate, l.CertificateFrom = &cert, "security.ssl.rest.keystore "+o.Keystore
	}
	return l, nil
}

func (l *ConfigLayer) String() string {
	if l == nil {
		return "{}"
	}
	return fmt.Sprintf("{url=%s truststore=%s keystore=%s}", l.URL, l.RootCAsFrom, l.CertificateFrom)
}
