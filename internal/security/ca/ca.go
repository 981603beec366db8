// Package ca is sluice's cluster certificate authority: the automatic mode
// in which the JobManager creates a CA and TaskManagers join with a token
// (kubeadm-join style), and the generator behind `sluice security
// create-certs`.
//
// Identities are SPIFFE IDs in a URI SAN: spiffe://<cluster-id>/jobmanager
// and spiffe://<cluster-id>/taskmanager/<tm-id>. The CA certificate itself
// carries spiffe://<cluster-id>, so whoever holds the CA certificate can tell
// which cluster (trust domain) it belongs to.
//
// This package deliberately does not import internal/security/tlsconf: the
// CA is the root of trust and has to stand on the standard library alone.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// File names inside the CA directory of auto mode
// (security.ssl.internal.auto.dir).
const (
	CertFile      = "ca.crt"
	KeyFile       = "ca.key"
	ClusterIDFile = "cluster-id"
)

// DefaultCAValidity is the lifetime of a CA created by LoadOrCreate. It is
// long because rotating a cluster CA means re-joining every TaskManager;
// the short-lived leaf certificates are what limit the damage of a leak.
const DefaultCAValidity = 10 * 365 * 24 * time.Hour

// clockSkew backdates NotBefore so that a freshly issued certificate is
// already valid on a peer whose clock is slightly behind.
const clockSkew = 5 * time.Minute

// CA is a cluster certificate authority.
type CA struct {
	Cert      *x509.Certificate
	Key       crypto.Signer
	ClusterID string
}

// New creates a CA in memory (tests, create-certs). clusterID "" generates
// one.
func New(clusterID string, validity time.Duration) (*CA, error) {
	if clusterID == "" {
		var err error
		if clusterID, err = NewClusterID(); err != nil {
			return nil, err
		}
	}
	td, err := trustDomain(clusterID)
	if err != nil {
		return nil, err
	}
	if validity <= 0 {
		return nil, fmt.Errorf("create cluster CA: validity must be positive, got %s", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create cluster CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sluice cluster CA " + clusterID, Organization: []string{"sluice"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Only leaves below this CA: an issued certificate can never be
		// turned into a sub-CA even if someone got a CA flag into it.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		URIs:           []*url.URL{td.ID().URL()},
		// Name constraint: this CA can only vouch for identities in its own
		// trust domain, so a cert from cluster A never verifies as an
		// identity of cluster B even if both CAs were trusted somewhere.
		PermittedURIDomains: []string{clusterID},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create cluster CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new cluster CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, ClusterID: clusterID}, nil
}

// LoadOrCreate loads ca.crt, ca.key and cluster-id from dir, or creates
// them when none exists (dir 0700, ca.key 0600). clusterID "" accepts
// whatever is stored, or generates one when creating; a non-empty clusterID
// must match the stored one, so a misconfigured node never silently joins
// the wrong cluster.
func LoadOrCreate(dir, clusterID string) (*CA, error) {
	if dir == "" {
		return nil, errors.New("cluster CA: empty directory (set security.ssl.internal.auto.dir)")
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certExists, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certExists && keyExists:
		return load(dir, clusterID)
	case certExists || keyExists:
		// Half a CA is a broken or tampered directory; recreating would
		// orphan every certificate the old CA issued, so make a human decide.
		return nil, fmt.Errorf("cluster CA in %s is incomplete (%s present: %t, %s present: %t); restore the missing file or remove the directory to create a new CA",
			dir, CertFile, certExists, KeyFile, keyExists)
	}
	c, err := New(clusterID, DefaultCAValidity)
	if err != nil {
		return nil, err
	}
	if err := c.save(dir); err != nil {
		return nil, err
	}
	return c, nil
}

func load(dir, clusterID string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if err := checkPrivateFile(keyPath); err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("cluster CA certificate %s is not a CA certificate", certPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA key: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster CA key %s: %w", keyPath, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("cluster CA key %s does not belong to certificate %s", keyPath, certPath)
	}
	certID, err := clusterIDOf(cert)
	if err != nil {
		return nil, fmt.Errorf("cluster CA certificate %s: %w", certPath, err)
	}
	// The cluster-id file is a convenience for humans and scripts; the
	// certificate is authoritative, but disagreement means tampering or a
	// copy mix-up, which must not go unnoticed.
	idPath := filepath.Join(dir, ClusterIDFile)
	if b, err := os.ReadFile(idPath); err == nil {
		if fileID := strings.TrimSpace(string(b)); fileID != certID {
			return nil, fmt.Errorf("cluster id %q in %s does not match %q in %s", fileID, idPath, certID, certPath)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read cluster id: %w", err)
	}
	if clusterID != "" && clusterID != certID {
		return nil, fmt.Errorf("configured cluster id %q does not match cluster id %q of the CA in %s; fix the configured cluster id or point security.ssl.internal.auto.dir elsewhere",
			clusterID, certID, dir)
	}
	return &CA{Cert: cert, Key: key, ClusterID: certID}, nil
}

func (c *CA) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create cluster CA directory: %w", err)
	}
	// MkdirAll is subject to the umask and leaves an existing directory as
	// it was; the CA key lives here, so enforce 0700.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict cluster CA directory: %w", err)
	}
	keyPEM, err := encodeKeyPEM(c.Key)
	if err != nil {
		return err
	}
	// ca.crt goes last: its presence marks a complete CA (see LoadOrCreate).
	if err := writeFileAtomic(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, ClusterIDFile), []byte(c.ClusterID+"\n"), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, CertFile), c.CertPEM(), 0o644)
}

// Hash is kubeadm's discovery-token-ca-cert-hash of the CA: "sha256:" +
// hex(sha256(SubjectPublicKeyInfo DER)). It pins the CA key, not the
// certificate, so re-issuing the CA certificate with the same key keeps
// existing join tokens valid.
func (c *CA) Hash() string { return HashOf(c.Cert) }

// HashOf is Hash for any certificate.
func HashOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Pool returns a pool holding only this CA, for verifying peers.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// CertPEM returns the CA certificate in PEM form.
func (c *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// NewClusterID generates a cluster id: 16 lowercase hex characters, a
// valid SPIFFE trust domain name.
func NewClusterID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate cluster id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// trustDomain validates a cluster id as a bare SPIFFE trust domain name.
func trustDomain(clusterID string) (spiffeid.TrustDomain, error) {
	// TrustDomainFromString also accepts "spiffe://x"; a cluster id is the
	// bare name, so refuse anything with a scheme or path.
	if strings.ContainsAny(clusterID, ":/") {
		return spiffeid.TrustDomain{}, fmt.Errorf("invalid cluster id %q: use lowercase letters, digits, '.', '-' and '_' only", clusterID)
	}
	td, err := spiffeid.TrustDomainFromString(clusterID)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("invalid cluster id %q: %w (use lowercase letters, digits, '.', '-' and '_' only)", clusterID, err)
	}
	return td, nil
}

// clusterIDOf returns the trust domain in the CA certificate's single
// spiffe:// URI SAN.
func clusterIDOf(cert *x509.Certificate) (string, error) {
	var found string
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if found != "" {
			return "", errors.New("more than one spiffe:// URI SAN")
		}
		td, err := spiffeid.TrustDomainFromURI(u)
		if err != nil || (u.Path != "" && u.Path != "/") {
			return "", fmt.Errorf("URI SAN %q is not a SPIFFE trust domain", u)
		}
		found = td.Name()
	}
	if found == "" {
		return "", errors.New("no spiffe://<cluster-id> URI SAN: not a sluice cluster CA")
	}
	return found, nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits: serials must be unpredictable (CA/B forum asks for
	// at least 64 bits) so that chosen-prefix collisions stay impractical.
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return s, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("cluster CA: %w", err)
	}
}
