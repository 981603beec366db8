package tlsconf

import (
	"crypto/tls"
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
// and runs first. Nothing is checked when Options.VerifyHostname is false
// or when the store has no trust store (fingerprint pinning only: the
// pinned digest names the peer, host names add nothing).
func (s *Store) CheckHost(host string, cs tls.ConnectionState) error {
	if !s.opts.VerifyHostname || s.material().roots == nil || len(cs.PeerCertificates) == 0 {
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
