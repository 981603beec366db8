package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultURL is the JobManager a client talks to when nothing else is set.
const DefaultURL = "http://localhost:8081"

// Options configure a Client: where the JobManager is, whom to trust and
// how to authenticate.
type Options struct {
	// URL is the JobManager's REST endpoint, http:// or https://.
	URL string
	// CACert is a PEM file of the CAs to trust for https. Empty means the
	// system roots.
	CACert string
	// Cert and Key are PEM files of a client certificate and its key. Key
	// defaults to Cert, for a PEM file that holds both.
	Cert, Key string
	// Token is a bearer token sent in the Authorization header.
	Token string
	// ServerName overrides the name the server's certificate is checked
	// against, for a JobManager reached by an address its certificate does
	// not name.
	ServerName string
	// Kerberos authenticates with SPNEGO from the user's ticket cache
	// (KRB5CCNAME, else /tmp/krb5cc_<uid>; krb5.conf from KRB5_CONFIG,
	// else /etc/krb5.conf). The token is sent with every request, the
	// first included, for KerberosSPN.
	Kerberos bool
	// KerberosSPN is the service principal to get tickets for; empty means
	// HTTP/<host of URL>.
	KerberosSPN string
	// RootCAs and Certificate are trust and client certificate already
	// loaded (from security.ssl.rest.* key and trust stores); CACert and
	// Cert win over them.
	RootCAs     *x509.CertPool
	Certificate *tls.Certificate
	// SkipHostnameCheck verifies the server's chain but not that its
	// certificate names the host (security.ssl.verify-hostname: false).
	SkipHostnameCheck bool
	// RetryAttempts and RetryDelay (Flink's rest.retry.max-attempts and
	// rest.retry.delay) retry a request whose connection was refused, so
	// that a command run just after `sluice jobmanager &` waits for it.
	// Only refused connections are retried: the request was never sent.
	RetryAttempts int
	RetryDelay    time.Duration
}

// String describes the options without the token, so that logging them
// with %v cannot leak it.
func (o Options) String() string {
	tok := ""
	if o.Token != "" {
		tok = " token=<secret>"
	}
	krb := ""
	if o.Kerberos {
		krb = " kerberos=" + o.KerberosSPN
	}
	return fmt.Sprintf("{url=%s cacert=%s cert=%s key=%s servername=%s%s%s}", o.URL, o.CACert, o.Cert, o.Key, o.ServerName, tok, krb)
}

// GoString is String, for %#v.
func (o Options) GoString() string { return o.String() }

// LogValue keeps the token out of slog output.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// NewWithOptions returns a client for the JobManager o describes. It reads
// the certificate files now, so that a bad path fails before any request,
// and refuses a token that would travel in plaintext.
func NewWithOptions(o Options) (*Client, error) {
	u, err := parseURL(o.URL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: strings.TrimRight(u.String(), "/"), token: o.Token, retries: o.RetryAttempts, retryDelay: o.RetryDelay}
	if strings.ContainsFunc(o.Token, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		// Never echo it: the value may be a real token pasted wrongly.
		return nil, errors.New("the token contains spaces or control characters: check --token, --token-file or SLUICE_TOKEN")
	}
	if o.Token != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		// Checked before any dial: a bearer token seen once on the wire is
		// a stolen token. Loopback is exempt because it never leaves the host.
		return nil, fmt.Errorf("refusing to send a token over plaintext http to %s; use https", u.Host)
	}
	if o.Kerberos {
		if o.Token != "" {
			return nil, errors.New("--kerberos and a bearer token are exclusive (both go in the Authorization header): drop one")
		}
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			// A Negotiate token is a bearer credential for a few minutes:
			// whoever sees it can replay it to another replica of the service.
			return nil, fmt.Errorf("refusing to send a Kerberos ticket over plaintext http to %s; use https", u.Host)
		}
		spn := o.KerberosSPN
		if spn == "" {
			spn = "HTTP/" + strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		}
		if c.krb, err = newKerberosAuth(spn, os.Getenv, time.Now()); err != nil {
			return nil, err
		}
	}
	if u.Scheme == "http" && (o.Cert != "" || o.Key != "" || o.Certificate != nil) {
		// A client certificate is never sent over http; failing here beats
		// a puzzling 401 from a user who believes they authenticated. A CA
		// is harmless there, so a context's cacert does not get in the way
		// of --jobmanager http://localhost:8081.
		return nil, fmt.Errorf("a client certificate is set (--cert) but %s is plaintext http: use https://", c.base)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CACert != "" {
		pool, err := loadCAs(o.CACert)
		if err != nil {
			return nil, err
		}
		tlsConf.RootCAs = pool
	} else if o.RootCAs != nil {
		tlsConf.RootCAs = o.RootCAs
	}
	if o.SkipHostnameCheck {
		skipHostnameCheck(tlsConf)
	}
	if o.Cert != "" || o.Key != "" || o.Certificate != nil {
		var cert tls.Certificate
		if o.Cert != "" || o.Key != "" {
			if cert, err = loadClientCert(o.Cert, o.Key, time.Now()); err != nil {
				return nil, err
			}
		} else {
			cert = *o.Certificate
		}
		// Offer the certificate whatever CAs the server lists as acceptable:
		// crypto/tls would otherwise silently send none, and the user would
		// read "certificate required" instead of the server's refusal of
		// this certificate.
		tlsConf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		c.hasCert, c.certFile = true, o.Cert
		for _, der := range cert.Certificate {
			if parsed, err := x509.ParseCertificate(der); err == nil {
				c.certChain = append(c.certChain, parsed)
			}
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	c.http = &http.Client{
		Timeout:   2 * time.Minute,
		Transport: tr,
		// The REST API does not redirect; following one could carry the
		// token to another host or down to http, so report it instead.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

// skipHostnameCheck keeps the chain verification of c but drops the host
// name check, as Flink's security.ssl.verify-hostname: false does.
func skipHostnameCheck(c *tls.Config) {
	c.InsecureSkipVerify = true //nolint:gosec // the chain is verified in VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server presented no certificate")
		}
		opts := x509.VerifyOptions{Roots: c.RootCAs, Intermediates: x509.NewCertPool()}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}

// parseURL checks a --jobmanager value, defaulting the scheme to http as
// the CLI always did.
func parseURL(base string) (*url.URL, error) {
	if base == "" {
		base = DefaultURL
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--jobmanager %q: want a URL such as %s or https://jm.example.com:8443", base, DefaultURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--jobmanager %q: scheme must be http or https", base)
	}
	if u.User != nil {
		// Credentials in a URL end up in shell history and error messages.
		return nil, fmt.Errorf("--jobmanager %q: credentials in the URL are not supported; use --token-file or --cert", u.Redacted())
	}
	return u, nil
}

// isLoopback reports whether host never leaves this machine.
func isLoopback(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func loadCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA bundle (--cacert or cacert in the context): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA bundle %s (--cacert or cacert in the context): no PEM certificate found", file)
	}
	return pool, nil
}

// loadClientCert reads a certificate and key, and refuses an expired
// certificate so the user learns it here rather than from a TLS alert.
func loadClientCert(certFile, keyFile string, now time.Time) (tls.Certificate, error) {
	if certFile == "" {
		return tls.Certificate{}, errors.New("--key is set without --cert: pass the client certificate with --cert")
	}
	if keyFile == "" {
		keyFile = certFile
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if keyFile == certFile {
			return tls.Certificate{}, fmt.Errorf("client certificate %s (--cert): %w (if the key is in another file, pass --key)", certFile, err)
		}
		return tls.Certificate{}, fmt.Errorf("client certificate %s with key %s (--cert/--key): %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("client certificate %s (--cert): %w", certFile, err)
		}
	}
	if now.After(leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("client certificate %s (--cert) expired on %s: renew it", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	cert.Leaf = leaf
	return cert, nil
}
