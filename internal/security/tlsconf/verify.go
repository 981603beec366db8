package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reason classifies why a peer was refused, for logs and metrics.
type Reason string

// The reasons a peer certificate is refused.
const (
	UnknownCA           Reason = "unknown-ca"
	Expired             Reason = "expired"
	NotYetValid         Reason = "not-yet-valid"
	FingerprintMismatch Reason = "fingerprint-mismatch"
	IdentityNotAllowed  Reason = "identity-not-allowed"
	ForeignCluster      Reason = "foreign-cluster"
	NoIdentity          Reason = "no-identity"
	NoClientCert        Reason = "no-client-cert"
	BadCertificate      Reason = "bad-certificate"
	Revoked             Reason = "revoked"
)

// VerifyError is the error a handshake fails with when this side refuses
// the peer's certificate. Detail is a sentence a person can act on.
type VerifyError struct {
	Reason Reason
	Detail string
}

func (e *VerifyError) Error() string {
	if e.Detail == "" {
		return "tls: peer refused: " + string(e.Reason)
	}
	return "tls: peer refused: " + e.Detail
}

// PeerPolicy says whom a connection accepts. Identity checks apply only
// when this side's own certificate carries an identity; otherwise it is
// Flink's shared-certificate model, where holding the certificate is the
// whole proof.
type PeerPolicy struct {
	Allow              []Role // roles the peer may have; empty = any sluice role of the same cluster
	ClientCertOptional bool   // server only: accept handshakes without a client certificate (auto-mode bootstrap; the caller checks)
	ServerName         string // client only, optional: SNI
	// NoClientCert (server only) does not ask for a client certificate:
	// REST listeners whose clients authenticate otherwise.
	NoClientCert bool
	// SkipIdentity turns off the SPIFFE identity rules: REST clients are
	// people and programs, not cluster processes.
	SkipIdentity bool
}

// verifyPeer is the one verification of internal connections, for both
// sides: the chain against the current roots (no host names, as Flink
// skips them internally), then fingerprint pinning, then identity.
func (s *Store) verifyPeer(cs tls.ConnectionState, p PeerPolicy, server bool) error {
	m := s.material()
	if len(cs.PeerCertificates) == 0 {
		if server && (p.ClientCertOptional || p.NoClientCert) {
			return nil
		}
		if server {
			return &VerifyError{NoClientCert, "no client certificate presented"}
		}
		return &VerifyError{BadCertificate, "server presented no certificate"}
	}
	leaf, now := cs.PeerCertificates[0], time.Now()
	switch {
	case m.roots != nil:
		usage := x509.ExtKeyUsageServerAuth
		if server {
			usage = x509.ExtKeyUsageClientAuth
		}
		opts := x509.VerifyOptions{
			Roots:         m.roots,
			Intermediates: x509.NewCertPool(),
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{usage},
		}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := leaf.Verify(opts); err != nil {
			return s.chainError(leaf, err, now)
		}
	case len(s.p.fingerprints) > 0:
		// Pinning only: the pinned digest is the trust anchor (as SSH's
		// known_hosts), but an expired certificate is still refused.
		if err := validity(leaf, now); err != nil {
			return err
		}
	default:
		return &VerifyError{UnknownCA, fmt.Sprintf("no trust material to verify the peer (set %s)", s.opts.key("truststore"))}
	}
	if why, ok := s.Revoked(leaf.SerialNumber); ok {
		return &VerifyError{Revoked, fmt.Sprintf("certificate %q (serial %s) was revoked: %s", leaf.Subject, leaf.SerialNumber, why)}
	}
	if len(s.p.fingerprints) > 0 && !matchesAny(s.p.fingerprints, leaf) {
		return &VerifyError{FingerprintMismatch, fmt.Sprintf("certificate fingerprint does not match %s (peer's is SHA-256 %s, SHA-1 %s)",
			s.opts.key("cert.fingerprint"), FormatSHA256(leaf), FormatSHA1(leaf))}
	}
	if p.SkipIdentity {
		return nil
	}
	return s.checkIdentity(m, leaf, p)
}

func (s *Store) checkIdentity(m *material, leaf *x509.Certificate, p PeerPolicy) error {
	if m.idErr != nil {
		return &VerifyError{BadCertificate, fmt.Sprintf("this side's own certificate has a malformed identity: %v", m.idErr)}
	}
	if !m.hasID {
		if s.noIDLogged.CompareAndSwap(false, true) {
			s.log.Info("certificates carry no identity: peer identities are not enforced",
				"hint", "issue per-process certificates with a spiffe://<cluster-id>/<role> URI SAN, or use security.ssl.internal.auto")
		}
		return nil
	}
	id, ok, err := IdentityOf(leaf)
	switch {
	case err != nil:
		return &VerifyError{BadCertificate, err.Error()}
	case !ok:
		return &VerifyError{NoIdentity, fmt.Sprintf("peer certificate %q carries no identity (spiffe://%s/... URI SAN), but this side's does", leaf.Subject, m.id.ClusterID)}
	case id.ClusterID != m.id.ClusterID:
		return &VerifyError{ForeignCluster, fmt.Sprintf("peer identity %s belongs to cluster %q, not %q", id, id.ClusterID, m.id.ClusterID)}
	case len(p.Allow) > 0 && !slices.Contains(p.Allow, id.Role):
		want := make([]string, len(p.Allow))
		for i, r := range p.Allow {
			want[i] = string(r)
		}
		return &VerifyError{IdentityNotAllowed, fmt.Sprintf("peer identity %s is not allowed here (want %s)", id, strings.Join(want, " or "))}
	}
	return nil
}

// chainError turns an x509 verification error into a VerifyError.
func (s *Store) chainError(leaf *x509.Certificate, err error, now time.Time) error {
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		c := inv.Cert
		if c == nil {
			c = leaf
		}
		if verr := validity(c, now); verr != nil {
			return verr
		}
		return &VerifyError{Expired, err.Error()}
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return &VerifyError{BadCertificate, fmt.Sprintf("certificate %q is not valid for this use (extended key usage): %v", leaf.Subject, err)}
	case errors.As(err, &ua):
		return &VerifyError{UnknownCA, fmt.Sprintf("certificate signed by an unknown CA (check %s): issuer %q", s.opts.key("truststore"), leaf.Issuer)}
	}
	return &VerifyError{BadCertificate, err.Error()}
}

func validity(c *x509.Certificate, now time.Time) error {
	if now.After(c.NotAfter) {
		return &VerifyError{Expired, fmt.Sprintf("certificate %q expired at %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))}
	}
	if now.Before(c.NotBefore) {
		return &VerifyError{NotYetValid, fmt.Sprintf("certificate %q is not valid before %s (check the clocks)", c.Subject, c.NotBefore.UTC().Format(time.RFC3339))}
	}
	return nil
}
