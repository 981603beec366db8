package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Roles, the first path segment of a SPIFFE identity.
const (
	RoleJobManager  = "jobmanager"
	RoleTaskManager = "taskmanager"
)

// Identity returns the SPIFFE ID of a process: spiffe://<cluster>/jobmanager
// (id must be "") or spiffe://<cluster>/taskmanager/<id>.
func Identity(clusterID, role, id string) (*url.URL, error) {
	td, err := trustDomain(clusterID)
	if err != nil {
		return nil, err
	}
	var sid spiffeid.ID
	switch role {
	case RoleJobManager:
		// There is one JobManager identity per cluster; an id would create
		// look-alikes such as jobmanager/x that checks might confuse.
		if id != "" {
			return nil, fmt.Errorf("role %s takes no id, got %q", role, id)
		}
		sid, err = spiffeid.FromSegments(td, RoleJobManager)
	case RoleTaskManager:
		if id == "" {
			return nil, fmt.Errorf("role %s needs a TaskManager id", role)
		}
		sid, err = spiffeid.FromSegments(td, RoleTaskManager, id)
	default:
		return nil, fmt.Errorf("unknown role %q (want %s or %s)", role, RoleJobManager, RoleTaskManager)
	}
	if err != nil {
		return nil, fmt.Errorf("identity for %s %q: %w", role, id, err)
	}
	return sid.URL(), nil
}

// SharedTaskManagerIdentity returns spiffe://<cluster>/taskmanager, the
// identity of a TaskManager certificate that names no id: any TaskManager
// of the cluster may use it, each registering under its own id (Flink's one
// certificate for all TaskManagers, while a TaskManager still cannot act as
// the JobManager).
func SharedTaskManagerIdentity(clusterID string) (*url.URL, error) {
	td, err := trustDomain(clusterID)
	if err != nil {
		return nil, err
	}
	sid, err := spiffeid.FromSegments(td, RoleTaskManager)
	if err != nil {
		return nil, fmt.Errorf("shared taskmanager identity: %w", err)
	}
	return sid.URL(), nil
}

// Issue signs a certificate for pub carrying the SPIFFE identity of role/id
// in a URI SAN, hosts as DNS or IP SANs, usable for both sides of mutual
// TLS, valid for ttl (never beyond the CA). It returns the DER.
func (c *CA) Issue(role, id string, pub crypto.PublicKey, hosts []string, ttl time.Duration) ([]byte, error) {
	uri, err := Identity(c.ClusterID, role, id)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return c.issue(uri, pub, hosts, ttl, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// IssueKeyPair creates an ECDSA P-256 key and a certificate for it, and
// returns them as a tls.Certificate with the chain [leaf, CA]. The CA is
// in the chain because joining TaskManagers discover it from the handshake
// (see BootstrapClientConfig).
func (c *CA) IssueKeyPair(role, id string, hosts []string, ttl time.Duration) (tls.Certificate, error) {
	uri, err := Identity(c.ClusterID, role, id)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issue certificate: %w", err)
	}
	return c.issueKeyPair(uri, hosts, ttl, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

func (c *CA) issueKeyPair(uri *url.URL, hosts []string, ttl time.Duration, eku []x509.ExtKeyUsage) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	der, err := c.issue(uri, key.Public(), hosts, ttl, eku)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse issued certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, c.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// MaxCSRHosts bounds the host names a CSR may ask for.
const MaxCSRHosts = 16

// SignCSR checks the CSR's self-signature (proof that the requester holds
// the private key) and issues a certificate for role/id. The identity comes
// from the authenticated request, never from the CSR: its subject and URI
// SANs are ignored, so a joining TaskManager cannot ask for the
// JobManager's identity. Its DNS and IP SANs (at most MaxCSRHosts) are
// copied: they are the names the TaskManager is dialed by, which peers
// check with security.ssl.verify-hostname. A TaskManager can thus name any
// host, but peers still require the taskmanager identity of this cluster,
// so a host name never lets it pass for the JobManager.
func (c *CA) SignCSR(csrDER []byte, role, id string, ttl time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: parse: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign CSR: bad signature (the requester does not prove it holds the key): %w", err)
	}
	hosts := append([]string{}, csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	if len(hosts) > MaxCSRHosts {
		return nil, fmt.Errorf("sign CSR: %d host names, at most %d", len(hosts), MaxCSRHosts)
	}
	der, err := c.Issue(role, id, csr.PublicKey, hosts, ttl)
	if err != nil {
		return nil, fmt.Errorf("sign CSR: %w", err)
	}
	return der, nil
}

// issue is the one place that signs leaves. uri may be nil for the shared
// certificate of Flink's model, which carries no identity.
func (c *CA) issue(uri *url.URL, pub crypto.PublicKey, hosts []string, ttl time.Duration, eku []x509.ExtKeyUsage) ([]byte, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("issue certificate: ttl must be positive, got %s", ttl)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	now := time.Now()
	if !now.Before(c.Cert.NotAfter) {
		return nil, fmt.Errorf("issue certificate: cluster CA %s expired at %s", c.ClusterID, c.Cert.NotAfter.Format(time.RFC3339))
	}
	notAfter := now.Add(ttl)
	// A leaf cannot outlive its CA: verification would fail from then on
	// anyway, and an honest NotAfter makes RenewIn work.
	if notAfter.After(c.Cert.NotAfter) {
		notAfter = c.Cert.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"sluice " + c.ClusterID}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	if _, ok := pub.(*rsa.PublicKey); ok {
		// RSA key exchange (TLS 1.2 without ECDHE) encrypts with the key.
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	// The common name is for humans reading logs and openssl output; peers
	// decide on the URI SAN.
	if uri != nil {
		tmpl.URIs = []*url.URL{uri}
		tmpl.Subject.CommonName = uri.Path[1:]
	} else {
		tmpl.Subject.CommonName = "sluice " + c.ClusterID
	}
	for _, h := range hosts {
		if h == "" {
			return nil, errors.New("issue certificate: empty host name")
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, pub, c.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return der, nil
}

// NewCSR creates an ECDSA P-256 key and a CSR (DER) for a TaskManager
// dialed by hosts (DNS names or IP addresses), which the CA copies into
// the certificate. The subject is informative only: the CA ignores it (see
// SignCSR).
func NewCSR(tmID string, hosts []string) (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: RoleTaskManager + "/" + tmID}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CSR: %w", err)
	}
	return key, der, nil
}

// Renewal schedule. The holder of a certificate renews it after two thirds
// of the validity it can still use, counted from when it got the
// certificate (not from NotBefore, which is backdated by clockSkew and lies
// in the past: counting from it put the renewal time of a short-lived
// certificate before its issue, and renewal looped). A floor keeps any
// certificate, however short-lived or nearly expired, from being renewed
// more often than every MinRenewInterval, and failures back off
// exponentially up to MaxRenewBackoff.
const (
	MinRenewInterval = 10 * time.Second
	MaxRenewBackoff  = 5 * time.Minute
	// MinCertTTL is the shortest certificate lifetime automatic mode
	// accepts (security.ssl.internal.auto.cert-ttl): renewal at two thirds
	// leaves at least 100 s, several backed-off retries, to reach the
	// JobManager before the certificate expires.
	MinCertTTL = 5 * time.Minute
)

// RenewIn returns how long the holder of cert, which it got at now, waits
// before renewing it: two thirds of the usable validity
// (NotAfter - max(now, NotBefore)), at least MinRenewInterval.
func RenewIn(cert *x509.Certificate, now time.Time) time.Duration {
	from := now
	if cert.NotBefore.After(from) {
		from = cert.NotBefore
	}
	d := cert.NotAfter.Sub(from) * 2 / 3
	return max(d, MinRenewInterval)
}

// RenewBackoff is the wait after the n-th consecutive failed renewal
// (n >= 1): MinRenewInterval doubled per failure, at most MaxRenewBackoff.
func RenewBackoff(n int) time.Duration {
	d := MinRenewInterval
	for i := 1; i < n && d < MaxRenewBackoff; i++ {
		d *= 2
	}
	return min(d, MaxRenewBackoff)
}
