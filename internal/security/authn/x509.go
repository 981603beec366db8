package authn

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
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
	if id := processIdentity(cert); id != "" {
		return a.mapProcess(id)
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

// processIdentity returns the SPIFFE identity of a sluice process
// (spiffe://<cluster-id>/jobmanager, .../taskmanager/<id>) that cert
// carries, or "".
func processIdentity(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if !strings.EqualFold(u.Scheme, "spiffe") {
			continue
		}
		role, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if role == "jobmanager" || role == "taskmanager" {
			return u.String()
		}
	}
	return ""
}

// mapProcess maps the certificate of a sluice process. The cluster CA that
// issues process certificates is often the REST trust store too (the
// secured quick start uses it for both), and a process certificate
// must not become a REST user by accident: a stolen TaskManager key would
// otherwise be a login. Only a principal mapping rule whose pattern names
// SPIFFE identities ("spiffe:" in the pattern) and matches this one
// lets it in; DEFAULT and the CN default never do.
func (a *x509Authenticator) mapProcess(id string) (User, bool, error) {
	name, ok, err := a.rules.MapExplicit(id, "spiffe:")
	if err != nil {
		return User{}, false, err
	}
	if !ok {
		return User{}, false, fmt.Errorf("client certificate carries the sluice process identity %s (a JobManager or TaskManager certificate), which may not log in to the REST API; "+
			"use a user certificate, or to allow it add a rule naming it to %s, e.g. RULE:^%s$/<user>/", id, RulesKey, strings.ReplaceAll(regexp.QuoteMeta(id), "/", `\/`))
	}
	return User{Name: name, Method: MethodX509}, true, nil
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
