package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
)

// ParseTrustStore is LoadTrustStore for a store already read: a connector reads its trust
// store through its job's file grants, not with os.ReadFile. keyPrefix names the settings
// in messages (e.g. "properties.ssl").
func ParseTrustStore(path string, data []byte, typ, pass, keyPrefix string) (*x509.CertPool, error) {
	pool, _, err := parseTrustStore(path, data, typ, pass, keyPrefix)
	return pool, err
}

// ParseKeyStore is LoadKeyStore for a store already read; see ParseTrustStore.
func ParseKeyStore(path string, data []byte, typ, storePass, keyPass, keyPrefix string) (tls.Certificate, error) {
	return parseKeyStore(path, data, typ, storePass, keyPass, keyPrefix)
}
