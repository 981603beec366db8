package tlsconf

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/diag"
)

// Check diagnoses the TLS material cfg names, for the internal and the
// REST group: the options validate as at start-up (InternalOptions,
// RESTOptions: the same errors), the key and trust stores load with the
// code the processes use, no certificate expires within warn of now, and
// each trust store holds the issuer of its key store's certificate. What
// is not configured is a Skip finding.
func Check(cfg *config.Config, now time.Time, warn time.Duration) diag.Findings {
	var f diag.Findings
	checkGroup(&f, cfg, internalPrefix, now, warn)
	checkGroup(&f, cfg, restPrefix, now, warn)
	return f
}

func checkGroup(f *diag.Findings, cfg *config.Config, prefix string, now time.Time, warn time.Duration) {
	what, enabledKey, options := "internal TLS", "security.ssl.internal.enabled", InternalOptions
	if prefix == restPrefix {
		what, enabledKey, options = "REST TLS", "security.ssl.rest.enabled", RESTOptions
	}
	if prefix == internalPrefix && cfg.Bool("security.ssl.internal.auto") {
		f.Skipf(what, "automatic (security.ssl.internal.auto): the cluster CA issues and renews the certificates")
		return
	}
	o, err := options(cfg)
	if err != nil {
		if cfg.Bool(enabledKey) {
			f.Failf(what, "correct the key the error names: start-up refuses this configuration", "%v", err)
		} else {
			f.Warnf(what, "correct it before setting "+enabledKey+": true", "%v (not used while %s is false)", err, enabledKey)
		}
		return
	}
	if o.Keystore == "" && o.Truststore == "" {
		f.Skipf(what, "%s.keystore, .truststore not configured", prefix)
		return
	}
	var chain []*x509.Certificate
	if o.Keystore == "" {
		f.Skipf(what+" key store", "%s.keystore not configured", prefix)
	} else {
		cert, err := o.LoadKeyStore()
		if err != nil {
			f.Failf("", fmt.Sprintf("correct %s.keystore and its passwords, or recreate it (sluice security create-certs)", prefix),
				"%s key store %s does not load: %v", what, o.Keystore, err)
		} else {
			for _, der := range cert.Certificate {
				if x, err := x509.ParseCertificate(der); err == nil {
					chain = append(chain, x)
				}
			}
			if len(chain) > 0 {
				checkDates(f, fmt.Sprintf("%s key store %s: certificate %q", what, o.Keystore, chain[0].Subject.String()), chain[0], prefix+".keystore", now, warn)
			}
		}
	}
	if o.Truststore == "" {
		f.Skipf(what+" trust store", "%s.truststore not configured", prefix)
		return
	}
	_, roots, err := loadTrustStore(o.Truststore, o.TruststoreType, o.TruststorePassword.Value(), o.prefix())
	if err != nil {
		f.Failf("", fmt.Sprintf("correct %s.truststore and its password", prefix), "%s trust store %s does not load: %v", what, o.Truststore, err)
		return
	}
	for _, r := range roots {
		checkDates(f, fmt.Sprintf("%s trust store %s: CA %q", what, o.Truststore, r.Subject.String()), r, prefix+".truststore", now, warn)
	}
	if len(chain) == 0 {
		return
	}
	leaf := chain[0]
	if issuer := findIssuer(chain, roots); issuer != nil {
		f.OKf("", "%s trust store %s holds the issuer of the key store's certificate (%s)", what, o.Truststore, issuer.Subject.String())
	} else {
		f.Failf("", fmt.Sprintf("add the CA that issued the certificate (issuer %q) to %s, or issue the certificate from a CA that is in it", leaf.Issuer.String(), o.Truststore),
			"%s trust store %s does not hold the issuer of %q: peers presenting it would be refused", what, o.Truststore, leaf.Subject.String())
	}
}

// findIssuer returns the trusted certificate that signed a certificate
// of the chain (the leaf itself counts when it is pinned in the trust
// store), or nil.
func findIssuer(chain, roots []*x509.Certificate) *x509.Certificate {
	for _, cert := range chain {
		for _, r := range roots {
			if r.Equal(cert) {
				return r
			}
			if string(r.RawSubject) == string(cert.RawIssuer) && cert.CheckSignatureFrom(r) == nil {
				return r
			}
		}
	}
	return nil
}

func checkDates(f *diag.Findings, what string, cert *x509.Certificate, key string, now time.Time, warn time.Duration) {
	exp := cert.NotAfter.UTC().Format(time.RFC3339)
	switch left := cert.NotAfter.Sub(now); {
	case left <= 0:
		f.Failf("", fmt.Sprintf("renew it (sluice security create-certs, or your CA) and update %s", key), "%s expired on %s", what, exp)
	case now.Before(cert.NotBefore):
		f.Failf("", "check this host's clock, or reissue the certificate", "%s is not valid before %s", what, cert.NotBefore.UTC().Format(time.RFC3339))
	case left < warn:
		f.Warnf("", fmt.Sprintf("renew it (update %s)", key), "%s expires on %s, within %d days", what, exp, int(warn.Hours()/24))
	default:
		f.OKf("", "%s valid until %s", what, exp)
	}
}
