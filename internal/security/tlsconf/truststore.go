package tlsconf

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// LoadTrustStore loads the trusted certificates of a PEM bundle, a JKS
// store or a PKCS12 trust store as `keytool -importcert` writes it. typ ""
// detects the type from the content.
//
// Like Java, it also accepts a keystore as trust store and trusts the
// certificate of each key entry: Flink's documentation points both
// keystore and truststore at the same file for a shared self-signed
// certificate, and that setup must keep working.
func LoadTrustStore(path, typ, pass string) (*x509.CertPool, []*x509.Certificate, error) {
	return loadTrustStore(path, typ, pass, internalPrefix)
}

func loadTrustStore(path, typ, pass, prefix string) (*x509.CertPool, []*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read truststore (%s.truststore): %w", prefix, err)
	}
	return parseTrustStore(path, data, typ, pass, prefix)
}

func parseTrustStore(path string, data []byte, typ, pass, prefix string) (*x509.CertPool, []*x509.Certificate, error) {
	t, err := storeType(path, typ, data)
	if err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
	switch t {
	case TypePKCS12:
		certs, err = readPKCS12Trust(path, data, pass, prefix)
	case TypeJKS:
		certs, err = readJKSTrust(path, data, pass, prefix)
	default:
		certs, err = readPEMTrust(path, data)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("no certificate in truststore %s (%s.truststore)", path, prefix)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, certs, nil
}

func readPKCS12Trust(path string, data []byte, pass, prefix string) ([]*x509.Certificate, error) {
	certs, err := pkcs12.DecodeTrustStore(data, pass)
	if err == nil {
		return certs, nil
	}
	if isPKCS12Password(err) {
		return nil, wrongPassword("truststore", path, prefix+".truststore-password")
	}
	// A keystore used as trust store: trust its key entry's certificate.
	_, leaf, _, err2 := pkcs12.DecodeChain(data, pass)
	if err2 == nil {
		return []*x509.Certificate{leaf}, nil
	}
	return nil, fmt.Errorf("read PKCS12 truststore %s: %w", path, err)
}

func isPKCS12Password(err error) bool {
	return errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption)
}

func readJKSTrust(path string, data []byte, pass, prefix string) ([]*x509.Certificate, error) {
	ks, err := loadJKS(path, data, pass, "truststore", prefix+".truststore-password")
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, alias := range ks.Aliases() {
		var der []byte
		switch {
		case ks.IsTrustedCertificateEntry(alias):
			e, err := ks.GetTrustedCertificateEntry(alias)
			if err != nil {
				return nil, fmt.Errorf("JKS truststore %s, entry %q: %w", path, alias, err)
			}
			der = e.Certificate.Content
		case ks.IsPrivateKeyEntry(alias):
			chain, err := ks.GetPrivateKeyEntryCertificateChain(alias)
			if err != nil || len(chain) == 0 {
				continue
			}
			der = chain[0].Content
		default:
			continue
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("JKS truststore %s, entry %q: unreadable certificate: %w", path, alias, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func readPEMTrust(path string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return certs, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("truststore %s: unreadable certificate: %w", path, err)
		}
		certs = append(certs, c)
	}
}
