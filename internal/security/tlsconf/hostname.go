package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
)

// HostnameMismatch is the Reason of a server certificate that does not
// name the host that was dialed.
const HostnameMismatch Reason = "hostname-mismatch"

// CheckHost checks, on the client side of an internal connection, that the
// server's certificate names host, the host that was dialed, as Flink does
// with security.ssl.verify-hostname: true (endpoint identification). It
// complements verifyPeer, which checks the chain, pinning and identity
// and runs first. Nothing is checked when Options.VerifyHostname is false,
// when the store has no trust store (fingerprint pinning only: the pinned
// digest names the peer, host names add nothing), or when this side's own
// certificate names no host: that is Flink's shared certificate (its docs'
// keytool recipe has no SANs), where holding the certificate is the whole
// proof, as with identities (checkIdentity); it is logged once. Deciding
// on the own certificate, not the peer's, means a peer cannot turn the
// check off by presenting a certificate without host names.
func (s *Store) CheckHost(host string, cs tls.ConnectionState) error {
	m := s.material()
	if !s.opts.VerifyHostname || m.roots == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	if own := m.leaf(); own == nil || len(own.DNSNames) == 0 && len(own.IPAddresses) == 0 {
		if s.noHostsLogged.CompareAndSwap(false, true) {
			s.log.Warn("this process's certificate names no host (no DNS or IP SAN): host names of peers are not verified, as with Flink's shared certificate",
				"hint", "issue certificates with the host names processes are dialed by (sluice security create-certs --hosts) to have them checked ("+KeyVerifyHostname+")")
		}
		return nil
	}
	leaf := cs.PeerCertificates[0]
	if err := leaf.VerifyHostname(host); err == nil {
		return nil
	}
	names := append([]string{}, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	carried := "none"
	if len(names) > 0 {
		carried = strings.Join(names, ", ")
	}
	return &VerifyError{HostnameMismatch, fmt.Sprintf("certificate %q does not name host %q that was dialed (it names: %s): issue the certificate with %s among its DNS/IP SANs (sluice security create-certs --hosts), dial the peer by a name it carries, or set %s: false to turn host name checks off on internal connections",
		leaf.Subject, host, carried, host, KeyVerifyHostname)}
}

// leaf is this side's own certificate, nil when it has none yet.
func (m *material) leaf() *x509.Certificate {
	if m.cert == nil {
		return nil
	}
	return m.cert.Leaf
}
