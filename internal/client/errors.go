package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// APIError is an error answer of the REST API. Error gives the sentence
// to show the user; the fields are for callers that branch on them.
type APIError struct {
	Status int
	// Errors are the server's own reasons, from {"errors": [...]} or the body.
	Errors []string
	// Methods are the authentication methods a 401 offered, as the CLI
	// names them (token, x509, kerberos).
	Methods []string
	// RetryAfter is a 429's Retry-After.
	RetryAfter time.Duration

	msg string
}

func (e *APIError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("jobmanager answered %d %s: %s", e.Status, http.StatusText(e.Status), strings.Join(e.Errors, "; "))
}

// connError is a transport failure explained for the user. It keeps the
// cause for errors.As without printing Go's wording of it.
type connError struct {
	msg string
	err error
}

func (e *connError) Error() string { return e.msg }
func (e *connError) Unwrap() error { return e.err }

// plainHTTPOnTLSPort is what Go's TLS server answers to a plaintext request.
const plainHTTPOnTLSPort = "Client sent an HTTP request to an HTTPS server"

// explainTransport turns a failed round trip into a sentence that says
// what to change. ctx bounds the probe of a port that hung up. now is when the failure happened, to tell expired from
// not yet valid.
func (c *Client) explainTransport(ctx context.Context, err error, now time.Time) error {
	var (
		host  x509.HostnameError
		ua    x509.UnknownAuthorityError
		inv   x509.CertificateInvalidError
		rhe   tls.RecordHeaderError
		netOp *net.OpError
	)
	msg := err.Error()
	wrap := func(format string, args ...any) error {
		return &connError{msg: fmt.Sprintf(format, args...), err: err}
	}
	switch {
	case errors.As(err, &host):
		return wrap("the JobManager's certificate is valid for %s, not %s: use one of those names in --jobmanager", certNames(host.Certificate), host.Host)
	case errors.As(err, &ua):
		return wrap("the JobManager's certificate at %s is not trusted (signed by an unknown authority): pass --cacert with the CA that signed it, or set cacert in your context", c.base)
	case errors.As(err, &inv) && inv.Reason == x509.Expired && inv.Cert != nil:
		if now.Before(inv.Cert.NotBefore) {
			return wrap("the JobManager's certificate at %s is not valid before %s (now is %s): check the clocks of both machines",
				c.base, inv.Cert.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		return wrap("the JobManager's certificate at %s expired on %s: it must be renewed on the JobManager (security.ssl.rest.*)",
			c.base, inv.Cert.NotAfter.UTC().Format(time.RFC3339))
	case errors.Is(err, http.ErrSchemeMismatch):
		return wrap("the JobManager at %s does not speak TLS (first bytes look like HTTP): use http://", c.base)
	case errors.As(err, &rhe):
		return wrap("the JobManager at %s does not speak TLS (its first bytes are %q): check the URL and port", c.base, rhe.RecordHeader[:])
	case strings.Contains(msg, "malformed HTTP response") && looksLikeTLSRecord(msg):
		return wrap("the JobManager at %s speaks TLS: use https://", c.base)
	case strings.Contains(msg, "remote error: tls: "):
		return wrap("%s", c.explainAlert(msg[strings.LastIndex(msg, "remote error: tls: ")+len("remote error: tls: "):]))
	case errors.As(err, &netOp) && netOp.Op == "dial":
		return wrap("cannot reach the JobManager at %s (set --jobmanager, SLUICE_JOBMANAGER or jobmanager in your context): %v", c.base, netOp.Err)
	case strings.HasPrefix(c.base, "http://") && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		// A TLS server that answers plaintext by hanging up looks like
		// this; a handshake tells it from a server that just crashed.
		if speaksTLS(ctx, strings.TrimPrefix(c.base, "http://")) {
			return wrap("the JobManager at %s speaks TLS: use https://", c.base)
		}
		return wrap("the JobManager at %s closed the connection without answering", c.base)
	}
	return wrap("cannot reach the JobManager at %s (set --jobmanager, SLUICE_JOBMANAGER or jobmanager in your context): %v", c.base, err)
}

// speaksTLS reports whether hostport completes a TLS handshake. The
// handshake is only a probe: verification is skipped because nothing is
// sent over it, neither a request nor a credential, and the user is told
// to switch to https, where the certificate is verified.
func speaksTLS(ctx context.Context, hostport string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec // probe only, see above
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// explainAlert explains a TLS alert the JobManager sent: it refused us.
func (c *Client) explainAlert(alert string) string {
	alert = strings.TrimSpace(alert)
	switch alert {
	case "certificate required":
		return fmt.Sprintf("the JobManager at %s requires a client certificate: pass --cert/--key, or set cert and key in your context", c.base)
	case "bad certificate", "unknown certificate authority", "unsupported certificate", "certificate unknown":
		if !c.hasCert {
			return fmt.Sprintf("the JobManager at %s requires a client certificate (%s): pass --cert/--key, or set cert and key in your context", c.base, alert)
		}
		if why := c.certUsageProblem(); why != "" {
			return fmt.Sprintf("the JobManager at %s refused your client certificate (%s): %s", c.base, alert, why)
		}
		return fmt.Sprintf("the JobManager at %s refused your client certificate (%s): check it was issued by a CA the JobManager trusts", c.base, alert)
	case "expired certificate":
		return fmt.Sprintf("the JobManager at %s says your client certificate expired: renew it", c.base)
	case "certificate revoked":
		return fmt.Sprintf("the JobManager at %s says your client certificate is revoked", c.base)
	case "protocol version not supported":
		return fmt.Sprintf("the JobManager at %s does not accept TLS 1.2 or 1.3", c.base)
	}
	return fmt.Sprintf("the JobManager at %s refused the TLS handshake: %s", c.base, alert)
}

// certUsageProblem says what in the client's own certificate file makes a
// server refuse it as a client certificate whatever CA signed it: an
// extended key usage list without clientAuth (on the certificate, or on
// an intermediate in the file, which constrains it), or a key usage
// without digitalSignature. "" when nothing is wrong with its usages.
func (c *Client) certUsageProblem() string {
	for i, cert := range c.certChain {
		what := fmt.Sprintf("your client certificate %s (%s)", c.certFile, cert.Subject)
		if i > 0 {
			what = fmt.Sprintf("the intermediate CA %q in your client certificate file %s", cert.Subject.String(), c.certFile)
		}
		if len(cert.ExtKeyUsage) > 0 || len(cert.UnknownExtKeyUsage) > 0 {
			if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
				return fmt.Sprintf("%s has no clientAuth extended key usage (it has %s), so it cannot authenticate a client; "+
					"reissue it with extendedKeyUsage = clientAuth (openssl: -addext extendedKeyUsage=clientAuth)", what, extKeyUsages(cert))
			}
		}
		if i == 0 && cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			return fmt.Sprintf("%s has a key usage without digitalSignature, so it cannot sign the TLS handshake; reissue it with keyUsage = digitalSignature", what)
		}
	}
	return ""
}

// extKeyUsages names a certificate's extended key usages as openssl does.
func extKeyUsages(cert *x509.Certificate) string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
		x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
		x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
	}
	var out []string
	for _, u := range cert.ExtKeyUsage {
		if n, ok := names[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("usage %d", u))
		}
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return strings.Join(out, ", ")
}

// looksLikeTLSRecord reports whether Go's "malformed HTTP response" quotes
// a TLS record: an alert (0x15) or handshake (0x16) of version 3.x.
func looksLikeTLSRecord(msg string) bool {
	return strings.Contains(msg, `"\x15\x03`) || strings.Contains(msg, `"\x16\x03`)
}

// certNames lists the names a certificate is valid for.
func certNames(cert *x509.Certificate) string {
	if cert == nil {
		return "no names"
	}
	var names []string
	names = append(names, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if cert.Subject.CommonName != "" {
			return fmt.Sprintf("no names (only the legacy common name %q, which is not used for matching; the certificate needs subject alternative names)", cert.Subject.CommonName)
		}
		return "no names"
	}
	return strings.Join(names, ", ")
}

// explainStatus turns an error answer into an APIError with a sentence
// that says what to do. data is the body.
func (c *Client) explainStatus(resp *http.Response, data []byte, now time.Time) *APIError {
	e := &APIError{Status: resp.StatusCode, Errors: c.serverReasons(data)}
	reason := strings.Join(e.Errors, "; ")
	switch resp.StatusCode {
	case http.StatusBadRequest:
		if strings.Contains(string(data), plainHTTPOnTLSPort) {
			e.msg = fmt.Sprintf("the JobManager at %s speaks TLS: use https://", c.base)
		}
	case http.StatusUnauthorized:
		challenges := parseChallenges(resp.Header.Values("WWW-Authenticate"))
		for _, ch := range challenges {
			e.Methods = appendUnique(e.Methods, methodName(ch.scheme))
			if d := ch.params["error_description"]; d != "" && !strings.Contains(reason, d) {
				reason = strings.TrimPrefix(reason+"; "+c.redact(d), "; ")
			} else if d := ch.params["error"]; d != "" && reason == "" {
				reason = c.redact(d)
			}
		}
		accepts := "the JobManager accepts " + strings.Join(e.Methods, ", ")
		if len(e.Methods) == 0 {
			accepts = "the JobManager named no method it accepts"
		}
		reason = strings.TrimPrefix(reason, "authentication failed: ")
		offersToken := len(e.Methods) == 0 || slices.Contains(e.Methods, "token")
		switch {
		case c.krb != nil && !slices.Contains(e.Methods, "kerberos"):
			e.msg = fmt.Sprintf("authentication required: %s (not Kerberos)", accepts)
		case c.krb != nil:
			e.msg = fmt.Sprintf("authentication failed: the JobManager rejected the Kerberos ticket of %s for %s: %s (%s; check --kerberos-spn)",
				c.krb.client, c.krb.spn, orNoReason(reason), accepts)
		case c.token != "" && !offersToken:
			// The token was ignored, not refused: say what would work.
			e.msg = fmt.Sprintf("authentication required: %s (not tokens); pass --cert/--key", accepts)
		case c.token != "":
			// The token was sent and refused: the server's reason (invalid,
			// expired, unknown) is what the user needs.
			e.msg = fmt.Sprintf("authentication failed: the JobManager rejected the token: %s (%s; check --token/--token-file or SLUICE_TOKEN)", orNoReason(reason), accepts)
		case c.hasCert:
			e.msg = fmt.Sprintf("authentication failed: the JobManager did not accept your client certificate: %s (%s)", orNoReason(reason), accepts)
		case slices.Contains(e.Methods, "kerberos"):
			e.msg = fmt.Sprintf("authentication required: %s; pass --kerberos (after kinit), --token/--token-file or --cert/--key", accepts)
		default:
			e.msg = fmt.Sprintf("authentication required: %s; pass --token/--token-file or --cert/--key", accepts)
		}
	case http.StatusForbidden:
		e.msg = "forbidden: " + orNoReason(reason)
	case http.StatusTooManyRequests:
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
		if e.RetryAfter > 0 {
			e.msg = fmt.Sprintf("too many failed authentications; retry after %ds", int((e.RetryAfter+time.Second-1)/time.Second))
		} else {
			e.msg = "too many failed authentications; retry later"
		}
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		e.msg = fmt.Sprintf("the JobManager at %s redirected to %s, which the client does not follow (it could carry your credentials elsewhere): if that is the JobManager, use it in --jobmanager",
			c.base, resp.Header.Get("Location"))
	}
	return e
}

// serverReasons reads {"errors": [...]} or, failing that, the body's text.
// The token is redacted in case a server echoes it.
func (c *Client) serverReasons(data []byte) []string {
	var body struct {
		Errors []string `json:"errors"`
	}
	out := []string{strings.TrimSpace(string(data))}
	if json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		out = body.Errors
	}
	var kept []string
	for _, s := range out {
		if s = strings.TrimSpace(s); s != "" {
			kept = append(kept, c.redact(s))
		}
	}
	return kept
}

func (c *Client) redact(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "<token>")
}

func orNoReason(s string) string {
	if s == "" {
		return "the JobManager gave no reason"
	}
	return s
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// methodName names an HTTP authentication scheme as the CLI's flags do.
func methodName(scheme string) string {
	switch strings.ToLower(scheme) {
	case "bearer":
		return "token"
	case "negotiate", "kerberos":
		return "kerberos"
	case "clientcertificate", "x509", "mutual":
		return "x509"
	}
	return strings.ToLower(scheme)
}

// challenge is one WWW-Authenticate challenge (RFC 9110 section 11.6.1).
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads WWW-Authenticate headers; one header may hold
// several challenges separated by commas, as may the params of each.
func parseChallenges(headers []string) []challenge {
	var out []challenge
	for _, h := range headers {
		for _, part := range splitQuoted(h) {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			first, rest, _ := strings.Cut(part, " ")
			if !strings.Contains(first, "=") {
				// A token not followed by "=" starts a new challenge.
				out = append(out, challenge{scheme: first, params: map[string]string{}})
				part = strings.TrimSpace(rest)
				if part == "" {
					continue
				}
			}
			if len(out) == 0 {
				continue
			}
			if k, v, ok := strings.Cut(part, "="); ok {
				v = strings.TrimSpace(v)
				if uq, err := strconv.Unquote(v); err == nil {
					v = uq
				}
				out[len(out)-1].params[strings.ToLower(strings.TrimSpace(k))] = v
			}
		}
	}
	return out
}

// splitQuoted splits s at commas outside double quotes.
func splitQuoted(s string) []string {
	var parts []string
	inQuote, escaped, start := false, false, 0
	for i, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && inQuote:
			escaped = true
		case r == '"':
			inQuote = !inQuote
		case r == ',' && !inQuote:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
