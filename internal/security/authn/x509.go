package authn

import (
	"crypto/x509"
	"net/http"
	"slices"
)

// X509Challenge is the challenge offered for client certificates. No HTTP
// authentication scheme exists for them (the certificate is sent in the
// TLS handshake, not in a header), but a 401 should still tell a human or
// a client library that a certificate would have been accepted, rather
// than leave them guessing why their token-less request failed. RFC 9110
// makes clients skip schemes they do not know, so this harms none.
const X509Challenge = `ClientCertificate realm="sluice"`

type x509Authenticator struct {
	rules PrincipalMapper
}

var _ Authenticator = (*x509Authenticator)(nil)

// NewX509 authenticates requests by the client certificate the TLS layer
// verified: the leaf of the first verified chain or, when the listener's
// tls.Config verifies certificates itself (fingerprint pinning leaves
// VerifiedChains empty), the first peer certificate. It trusts the TLS
// layer for that: a listener must never use tls.RequestClientCert or
// RequireAnyClientCert without its own verification, or any self-signed
// certificate would authenticate.
//
// The user is the subject mapped by rules; the groups are the subject's O
// then OU values, so an organisation in a CA-issued certificate can be
// granted rights as a group, as in Kubernetes.
func NewX509(rules PrincipalMapper) Authenticator {
	return &x509Authenticator{rules: rules}
}

func (a *x509Authenticator) AuthenticateRequest(r *http.Request) (User, bool, error) {
	cert := clientCert(r)
	if cert == nil {
		return User{}, false, nil
	}
	dn, err := formatDN(cert.RawSubject)
	if err != nil {
		return User{}, false, err
	}
	name, err := a.rules.Map(dn)
	if err != nil {
		return User{}, false, err
	}
	var groups []string
	for _, g := range append(slices.Clone(cert.Subject.Organization), cert.Subject.OrganizationalUnit...) {
		if g != "" && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return User{Name: name, Groups: groups, Method: MethodX509}, true, nil
}

func clientCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil {
		return nil
	}
	if len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return r.TLS.VerifiedChains[0][0]
	}
	if len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0]
	}
	return nil
}

func (a *x509Authenticator) Method() string { return MethodX509 }

func (a *x509Authenticator) Challenge() string { return X509Challenge }
