package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"sync"
)

// BootstrapClientConfig returns the tls.Config a joining TaskManager uses
// for its first contact with the JobManager, when it has no certificate and
// does not know the CA yet, and a func returning the verified CA
// certificate after a successful handshake (nil before).
//
// The standard verification cannot be used because there is no root to
// verify against yet; the join token carries a hash of the CA key instead
// (kubeadm's discovery-token-ca-cert-hash). So InsecureSkipVerify is set and
// VerifyPeerCertificate does all of the verification:
//  1. find, among the certificates the server sent after its leaf, the CA
//     whose public key hash equals the token's CA hash; a man in the middle
//     cannot produce one, as it lacks the CA key;
//  2. verify the leaf against that CA alone (chain, validity, ServerAuth);
//  3. require the leaf's identity to be spiffe://<cluster>/jobmanager, the
//     cluster being the CA's trust domain, so that a TaskManager's
//     certificate (issued by the same CA) cannot pose as the JobManager.
func BootstrapClientConfig(t Token) (*tls.Config, func() *x509.Certificate) {
	var (
		mu       sync.Mutex
		verified *x509.Certificate
	)
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verification is done below against the token's CA hash; see the
		// doc comment. Never set without VerifyPeerCertificate.
		InsecureSkipVerify: true, //nolint:gosec // pinned by the join token's CA hash
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			ca, err := verifyBootstrapPeer(t.CAHash, rawCerts)
			if err != nil {
				return err
			}
			mu.Lock()
			verified = ca
			mu.Unlock()
			return nil
		},
	}
	return cfg, func() *x509.Certificate {
		mu.Lock()
		defer mu.Unlock()
		return verified
	}
}

func verifyBootstrapPeer(caHash string, rawCerts [][]byte) (*x509.Certificate, error) {
	if len(rawCerts) < 2 {
		return nil, errors.New("join: the JobManager sent no CA certificate in its chain (want [leaf, CA]); is it running in auto mode?")
	}
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("join: parse server certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	var ca *x509.Certificate
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		if ca == nil && HashOf(c) == caHash {
			ca = c
			continue
		}
		intermediates.AddCert(c)
	}
	if ca == nil {
		return nil, fmt.Errorf("join: the CA does not match the join token: the server presented %s, the token pins %s; wrong cluster, a stale token, or a man in the middle",
			HashOf(certs[len(certs)-1]), caHash)
	}
	if !ca.IsCA {
		return nil, errors.New("join: the certificate matching the join token's CA hash is not a CA certificate")
	}
	clusterID, err := clusterIDOf(ca)
	if err != nil {
		return nil, fmt.Errorf("join: cluster CA: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, fmt.Errorf("join: the server's certificate does not verify against the cluster CA: %w", err)
	}
	want, err := Identity(clusterID, RoleJobManager, "")
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if !hasOnlyURI(leaf, want) {
		return nil, fmt.Errorf("join: the server is not the JobManager: its identity is %s, want %s", uriList(leaf), want)
	}
	return ca, nil
}

// hasOnlyURI requires exactly one URI SAN, equal to want: a certificate
// with several identities would be ambiguous about who it is.
func hasOnlyURI(c *x509.Certificate, want *url.URL) bool {
	return len(c.URIs) == 1 && c.URIs[0].String() == want.String()
}

func uriList(c *x509.Certificate) string {
	if len(c.URIs) == 0 {
		return "(none)"
	}
	s := ""
	for i, u := range c.URIs {
		if i > 0 {
			s += ","
		}
		s += u.String()
	}
	return s
}
