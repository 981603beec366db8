package tlsconf

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Store types, as security.ssl.*.keystore-type spells them.
const (
	TypePKCS12 = "PKCS12"
	TypeJKS    = "JKS"
	TypePEM    = "PEM"
)

const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

// detectType tells the store type from its content, because Flink users
// often leave keystore-type unset (the JVM default) and file extensions lie.
func detectType(path string, data []byte) (string, error) {
	switch {
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")):
		return TypePEM, nil
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == jksMagic:
		return TypeJKS, nil
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == jceksMagic:
		return "", fmt.Errorf("%s is a JCEKS store, which sluice cannot read: convert it with `keytool -importkeystore -srckeystore %s -srcstoretype JCEKS -destkeystore store.p12 -deststoretype PKCS12`", path, path)
	case len(data) > 0 && data[0] == 0x30: // DER SEQUENCE
		return TypePKCS12, nil
	}
	return "", fmt.Errorf("%s is not a PEM, JKS or PKCS12 store", path)
}

func storeType(path, typ string, data []byte) (string, error) {
	if typ == "" {
		return detectType(path, data)
	}
	switch t := strings.ToUpper(typ); t {
	case TypePKCS12, "P12", "PFX":
		return TypePKCS12, nil
	case TypeJKS, TypePEM:
		return t, nil
	}
	return "", fmt.Errorf("%s: store type %q is not supported: use PKCS12, JKS or PEM", path, typ)
}

// LoadKeyStore loads a certificate chain and its private key from a PKCS12,
// JKS or PEM keystore. typ "" detects the type from the content. Errors
// name the path and the security.ssl.internal.* key to fix; see
// Options.KeyPrefix for other groups.
func LoadKeyStore(path, typ string, storePass, keyPass string) (tls.Certificate, error) {
	return loadKeyStore(path, typ, storePass, keyPass, internalPrefix)
}

func loadKeyStore(path, typ, storePass, keyPass, prefix string) (tls.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read keystore (%s.keystore): %w", prefix, err)
	}
	return parseKeyStore(path, data, typ, storePass, keyPass, prefix)
}

func parseKeyStore(path string, data []byte, typ, storePass, keyPass, prefix string) (tls.Certificate, error) {
	t, err := storeType(path, typ, data)
	if err != nil {
		return tls.Certificate{}, err
	}
	var (
		key   crypto.PrivateKey
		chain []*x509.Certificate
	)
	switch t {
	case TypePKCS12:
		key, chain, err = readPKCS12Key(path, data, storePass, keyPass, prefix)
	case TypeJKS:
		key, chain, err = readJKSKey(path, data, storePass, keyPass, prefix)
	default:
		key, chain, err = readPEMKey(path, data)
	}
	if err != nil {
		return tls.Certificate{}, err
	}
	return pairUp(path, key, chain)
}

func wrongPassword(what, path, key string) error {
	return fmt.Errorf("%s: wrong %s password (%s)", path, what, key)
}

func readPKCS12Key(path string, data []byte, storePass, keyPass, prefix string) (crypto.PrivateKey, []*x509.Certificate, error) {
	// go-pkcs12 uses one password for the MAC and the key; keytool's
	// PKCS12 stores use the store password for both, but a user may have
	// put it in key-password only, so try both.
	var lastErr error
	for _, pass := range uniq(storePass, keyPass) {
		key, leaf, cas, err := pkcs12.DecodeChain(data, pass)
		if err == nil {
			return key, append([]*x509.Certificate{leaf}, cas...), nil
		}
		lastErr = err
		if !isPKCS12Password(err) {
			break
		}
	}
	switch {
	case isPKCS12Password(lastErr):
		return nil, nil, wrongPassword("keystore", path, prefix+".keystore-password")
	case lastErr != nil && strings.Contains(lastErr.Error(), "private key missing"):
		return nil, nil, fmt.Errorf("no private key in PKCS12 keystore %s (is it a trust store?)", path)
	}
	return nil, nil, fmt.Errorf("read PKCS12 keystore %s: %w", path, lastErr)
}

func readJKSKey(path string, data []byte, storePass, keyPass, prefix string) (crypto.PrivateKey, []*x509.Certificate, error) {
	ks, err := loadJKS(path, data, storePass, "keystore", prefix+".keystore-password")
	if err != nil {
		return nil, nil, err
	}
	for _, alias := range ks.Aliases() {
		if !ks.IsPrivateKeyEntry(alias) {
			continue
		}
		// The first key entry (aliases in order) is ours: sluice presents
		// one certificate per connection group.
		var entry keystore.PrivateKeyEntry
		err = errors.New("no password")
		for _, pass := range uniq(keyPass, storePass) {
			if entry, err = ks.GetPrivateKeyEntry(alias, []byte(pass)); err == nil {
				break
			}
		}
		if err != nil {
			return nil, nil, wrongPassword("key", path, prefix+".key-password")
		}
		key, err := x509.ParsePKCS8PrivateKey(entry.PrivateKey)
		if err != nil {
			return nil, nil, fmt.Errorf("JKS keystore %s, entry %q: unreadable private key: %w", path, alias, err)
		}
		var chain []*x509.Certificate
		for _, c := range entry.CertificateChain {
			cert, err := x509.ParseCertificate(c.Content)
			if err != nil {
				return nil, nil, fmt.Errorf("JKS keystore %s, entry %q: unreadable certificate: %w", path, alias, err)
			}
			chain = append(chain, cert)
		}
		return key, chain, nil
	}
	return nil, nil, fmt.Errorf("no private key entry in JKS keystore %s", path)
}

func loadJKS(path string, data []byte, pass, what, key string) (keystore.KeyStore, error) {
	ks := keystore.New(keystore.WithOrderedAliases(), keystore.WithCaseExactAliases())
	if err := checkJKSBounds(data); err != nil {
		return ks, fmt.Errorf("read JKS %s %s: %w", what, path, err)
	}
	if err := ks.Load(bytes.NewReader(data), []byte(pass)); err != nil {
		if strings.Contains(err.Error(), "invalid digest") {
			return ks, wrongPassword(what, path, key)
		}
		return ks, fmt.Errorf("read JKS %s %s: %w", what, path, err)
	}
	return ks, nil
}

func readPEMKey(path string, data []byte) (crypto.PrivateKey, []*x509.Certificate, error) {
	var (
		key   crypto.PrivateKey
		chain []*x509.Certificate
	)
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var err error
		switch b.Type {
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				chain = append(chain, c)
			}
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, fmt.Errorf("%s holds an encrypted private key, which sluice does not read: decrypt it with `openssl pkey -in %s -out key.pem` and protect the file with permissions, or use a PKCS12 keystore", path, path)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, enc := b.Headers["DEK-Info"]; enc {
				return nil, nil, fmt.Errorf("%s holds an encrypted private key, which sluice does not read: decrypt it with `openssl pkey -in %s -out key.pem`, or use a PKCS12 keystore", path, path)
			}
			if key != nil {
				return nil, nil, fmt.Errorf("%s holds more than one private key: keep only the one of the certificate", path)
			}
			key, err = parsePEMKey(b)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: unreadable %s: %w", path, b.Type, err)
		}
	}
	if key == nil {
		return nil, nil, fmt.Errorf("no private key in PEM keystore %s: it must hold the certificate chain and the private key", path)
	}
	return key, chain, nil
}

func parsePEMKey(b *pem.Block) (crypto.PrivateKey, error) {
	switch b.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	}
	return x509.ParsePKCS8PrivateKey(b.Bytes)
}

// pairUp checks key and chain belong together and puts the key's
// certificate first, as PEM files are not always in order.
func pairUp(path string, key crypto.PrivateKey, chain []*x509.Certificate) (tls.Certificate, error) {
	if len(chain) == 0 {
		return tls.Certificate{}, fmt.Errorf("no certificate in keystore %s", path)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return tls.Certificate{}, fmt.Errorf("keystore %s: unsupported private key type %T", path, key)
	}
	switch signer.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return tls.Certificate{}, fmt.Errorf("keystore %s: private key type %T cannot be used for TLS", path, key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return tls.Certificate{}, fmt.Errorf("keystore %s: unsupported public key type %T", path, signer.Public())
	}
	leafAt := -1
	for i, c := range chain {
		if pub.Equal(c.PublicKey) {
			leafAt = i
			break
		}
	}
	if leafAt < 0 {
		return tls.Certificate{}, fmt.Errorf("certificate and private key in %s do not match", path)
	}
	ordered := append([]*x509.Certificate{chain[leafAt]}, append(chain[:leafAt:leafAt], chain[leafAt+1:]...)...)
	out := tls.Certificate{PrivateKey: key, Leaf: ordered[0]}
	for _, c := range ordered {
		out.Certificate = append(out.Certificate, c.Raw)
	}
	return out, nil
}

// uniq returns the non-duplicate values in order; an empty password is
// tried only if it is the only one, as stores without a password exist.
func uniq(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		out = append(out, "")
	}
	return out
}
