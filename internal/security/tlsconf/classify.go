package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Classify turns a handshake error (ours, crypto/tls's, x509's, or an
// alert from the peer) into a short reason a person can act on, naming
// security.ssl.internal.* keys. Store.Classify names the Store's own keys
// and versions.
func Classify(err error) string { return classify(err, internalPrefix, "") }

// Classify is the package Classify with this Store's config keys and its
// accepted TLS versions in the reason.
func (s *Store) Classify(err error) string {
	return classify(err, s.opts.prefix(), versionRange(s.p.minVersion, s.p.maxVersion))
}

func classify(err error, prefix, want string) string {
	if err == nil {
		return ""
	}
	if want == "" {
		want = "a version security.ssl.protocol allows"
	}
	key := func(s string) string { return prefix + "." + s }
	var (
		ve  *VerifyError
		rhe tls.RecordHeaderError
		ua  x509.UnknownAuthorityError
		inv x509.CertificateInvalidError
		ne  net.Error
	)
	msg := err.Error()
	switch {
	case errors.As(err, &ve):
		if ve.Detail != "" {
			return ve.Detail
		}
		return string(ve.Reason)
	case errors.As(err, &rhe):
		if looksLikeHTTP(rhe.RecordHeader[:]) {
			return fmt.Sprintf("plaintext HTTP client on a TLS port (use https, or is %s set on the peer?)", key("enabled"))
		}
		return fmt.Sprintf("plaintext client on a TLS port (is %s set on the peer?)", key("enabled"))
	case strings.Contains(msg, "client offered only unsupported versions"):
		return fmt.Sprintf("peer offered %s; this side requires %s (security.ssl.protocol)", offered(msg), want)
	case strings.Contains(msg, "server selected unsupported protocol version"):
		return fmt.Sprintf("peer selected %s; this side requires %s (security.ssl.protocol)", versionName(lastHex(msg)), want)
	case strings.Contains(msg, "client didn't provide a certificate"):
		return "no client certificate presented"
	case errors.As(err, &ua):
		return fmt.Sprintf("certificate signed by an unknown CA (check %s)", key("truststore"))
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return "certificate expired or not yet valid: " + inv.Error()
	case strings.Contains(msg, "remote error: tls: "):
		return remoteAlert(strings.TrimSpace(msg[strings.LastIndex(msg, "remote error: tls: ")+len("remote error: tls: "):]), prefix)
	case strings.Contains(msg, "no cipher suite supported by both client and server"),
		strings.Contains(msg, "no mutually supported"):
		return "no cipher suite or key exchange in common (check security.ssl.algorithms and security.ssl.protocol on both sides)"
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("handshake timed out (%s)", key("handshake-timeout"))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "peer closed the connection during the handshake (it may have refused this side's certificate, or not speak TLS: see the peer's log)"
	}
	return msg
}

// remoteAlert explains an alert the peer sent, i.e. the peer refused us.
func remoteAlert(alert, prefix string) string {
	key := func(s string) string { return prefix + "." + s }
	switch alert {
	case "unknown certificate authority":
		return fmt.Sprintf("peer does not trust the CA of this side's certificate (check the peer's %s)", key("truststore"))
	case "bad certificate":
		return "peer refused this side's certificate (see the peer's log for why: identity, fingerprint or CA)"
	case "certificate required":
		return fmt.Sprintf("peer requires a client certificate and this side sent none (check %s)", key("keystore"))
	case "expired certificate":
		return fmt.Sprintf("peer says this side's certificate expired (renew %s)", key("keystore"))
	case "protocol version not supported":
		return "peer does not accept this side's TLS versions (check security.ssl.protocol on both sides)"
	case "handshake failure":
		return "peer found no cipher suite or parameters in common (check security.ssl.algorithms and security.ssl.protocol on both sides)"
	case "unsupported certificate":
		return "peer cannot use this side's certificate type or key usage"
	}
	return "peer refused the handshake: " + alert
}

func looksLikeHTTP(h []byte) bool {
	// RecordHeader holds the first 5 bytes the peer sent.
	for _, m := range []string{"GET /", "POST ", "PUT /", "HEAD ", "DELET", "OPTIO", "PATCH", "HTTP/"} {
		if string(h) == m {
			return true
		}
	}
	return false
}

// offered reads the versions of "client offered only unsupported
// versions: [302 301]".
func offered(msg string) string {
	i, j := strings.LastIndex(msg, "["), strings.LastIndex(msg, "]")
	if i < 0 || j < i {
		return "only unsupported versions"
	}
	var best uint64
	fields := strings.Fields(msg[i+1 : j])
	for _, f := range fields {
		if v, err := strconv.ParseUint(f, 16, 16); err == nil && v > best {
			best = v
		}
	}
	if len(fields) == 1 {
		return "only " + versionName(uint16(best))
	}
	return "at most " + versionName(uint16(best))
}

func lastHex(msg string) uint16 {
	f := strings.Fields(msg)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseUint(f[len(f)-1], 16, 16)
	return uint16(v)
}

func versionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0:
		return "an unknown version"
	}
	return tls.VersionName(v)
}

func versionRange(lo, hi uint16) string {
	if lo == 0 {
		return ""
	}
	if lo == hi {
		return versionName(lo)
	}
	return versionName(lo) + " to " + versionName(hi)
}
