package jobmanager

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/security/audit"
	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// auditAuthnFailure is the authentication filter's OnFailure: every
// failed authentication is an audit event (method, reason, listener and
// client address; never the credential, which authn.Failure does not
// carry).
func auditAuthnFailure(l *audit.Logger) func(r *http.Request, f authn.Failure) {
	return func(r *http.Request, f authn.Failure) {
		if !l.Enabled("deny") {
			return
		}
		reason := f.Reason
		if f.Limited {
			reason += " (answered 429: too many failed authentications from this address prefix)"
		}
		l.Log(audit.Event{
			Time: time.Now().UTC(), RequestID: RequestID(r.Context()), Stage: audit.StageAuthentication,
			Method: f.Method, Verb: "authenticate", Request: r.Method + " " + r.URL.Path,
			Decision: "deny", Reason: reason, Listener: f.Listener, RemoteAddr: f.RemoteAddr,
		})
	}
}

// auditHandshakeFailure returns the REST listener's observer of failed TLS
// handshakes that audits those where the client's certificate was
// refused (unknown CA, expired, wrong usage, none where one is required):
// a failed authentication by x509 that never became an HTTP request.
// Other handshake failures (scanners, plaintext clients, versions) go to
// the process log only.
func auditHandshakeFailure(l *audit.Logger, listener string, classify func(error) string) func(peer net.Addr, err error) {
	return func(peer net.Addr, err error) {
		if err == nil || !l.Enabled("deny") || !clientCertRefused(err) {
			return
		}
		addr := ""
		if peer != nil {
			addr = peer.String()
			if host, _, herr := net.SplitHostPort(addr); herr == nil {
				addr = host
			}
		}
		l.Log(audit.Event{
			Time: time.Now().UTC(), Stage: audit.StageAuthentication, Method: authn.MethodX509,
			Verb: "authenticate", Request: "TLS handshake", Decision: "deny", Reason: classify(err),
			Listener: listener, RemoteAddr: addr,
		})
	}
}

// clientCertRefused reports whether a server-side handshake failed on the
// client's certificate.
func clientCertRefused(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		inv x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
		ve  *tlsconf.VerifyError // fingerprint pinning
	)
	if errors.As(err, &ua) || errors.As(err, &inv) || errors.As(err, &cve) || errors.As(err, &ve) {
		return true
	}
	return strings.Contains(err.Error(), "client didn't provide a certificate")
}
