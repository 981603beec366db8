// Package opa implements an authz.Authorizer that queries Open Policy
// Agent over its REST data API (POST /v1/data/<path>).
//
// The input document is the same Spec the webhook authorizer sends, so one
// policy vocabulary serves both (see examples/policy.rego). The policy
// answers true/false, or {"allow": bool, "reason": string}. OPA is a final
// authority: anything but a clear allow — an undefined result, an error, a
// timeout — is a Deny, never a NoOpinion, because a policy that forgot a
// case must not let a later authorizer allow it.
package opa

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/authz/webhook"
)

// Defaults for Options.
const (
	DefaultPath    = "sluice/authz"
	DefaultTimeout = 2 * time.Second
)

// maxResponse bounds the answer read from OPA.

// Options configures an OPA authorizer.
type Options struct {
	// URL is OPA's base URL. http is accepted only for loopback hosts
	// (OPA as a sidecar); anything else must be https.
	URL string
	// Path is the policy document under /v1/data/, e.g. "sluice/authz"
	// or "sluice/authz/decision"; default "sluice/authz".
	Path    string
	Timeout time.Duration // per query; default 2s
	TLS     *tls.Config   // for https: trust store; nil means system roots
	Log     *slog.Logger
}

// OPA is an authz.Authorizer backed by an Open Policy Agent server.
type OPA struct {
	endpoint string // full query URL
	redacted string // endpoint without credentials, for logs
	path     string
	timeout  time.Duration
	client   *http.Client
	log      *slog.Logger
}

var _ authz.Authorizer = (*OPA)(nil)

// New returns an OPA authorizer for o.
func New(o Options) (*OPA, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("OPA authorizer: invalid URL %q: set security.authorization.opa.url to http://127.0.0.1:8181 (sidecar) or https://host:port", o.URL)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("OPA authorizer: URL %s uses http to a non-loopback host: identities and decisions must not travel in clear text; use https (with security.authorization.opa.truststore) or run OPA as a sidecar on 127.0.0.1 (security.authorization.opa.url)", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("OPA authorizer: URL %s: no query or fragment allowed (security.authorization.opa.url)", u.Redacted())
	}
	path := o.Path
	if path == "" {
		path = DefaultPath
	}
	path = strings.Trim(path, "/")
	var segs []string
	for _, s := range strings.Split(path, "/") {
		// A policy path is a Rego package path: plain names. Refusing
		// "..", "." and empty segments keeps the query where configured.
		if s == "" || s == "." || s == ".." {
			return nil, fmt.Errorf("OPA authorizer: policy path %q: want names separated by slashes, like sluice/authz (security.authorization.opa.path)", o.Path)
		}
		segs = append(segs, url.PathEscape(s))
	}
	base := *u
	base.Path = strings.TrimRight(u.Path, "/") + "/v1/data/" + strings.Join(segs, "/")
	base.RawPath = ""
	p := &OPA{
		endpoint: base.String(),
		redacted: base.Redacted(),
		path:     path,
		timeout:  o.Timeout,
		log:      o.Log,
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	var tc *tls.Config
	if o.TLS != nil {
		tc = o.TLS.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	p.client = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // a sidecar is never behind a proxy; a remote OPA is configured directly
			DialContext:         (&net.Dialer{Timeout: p.timeout}).DialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: p.timeout,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p, nil
}

// FromConfig builds an OPA authorizer from security.authorization.opa.*.
func FromConfig(cfg *config.Config, log *slog.Logger) (*OPA, error) {
	const prefix = "security.authorization.opa."
	if cfg.String(prefix+"url") == "" {
		return nil, fmt.Errorf("OPA authorizer: set %surl, e.g. http://127.0.0.1:8181 for a sidecar", prefix)
	}
	tc, err := webhook.ClientTLS(cfg, prefix)
	if err != nil {
		return nil, fmt.Errorf("OPA authorizer: %w", err)
	}
	return New(Options{
		URL:     cfg.String(prefix + "url"),
		Path:    cfg.String(prefix + "path"),
		Timeout: cfg.Duration(prefix + "timeout"),
		TLS:     tc,
		Log:     log,
	})
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close releases idle connections to OPA.
func (p *OPA) Close() { p.client.CloseIdleConnections() }

// Authorize queries the policy with a's Spec as input. It returns Allow or
// Deny, never NoOpinion, and a nil error even when OPA cannot be asked:
// that is a deny whose reason says why.
func (p *OPA) Authorize(ctx context.Context, a authz.Attributes) (authz.Decision, string, error) {
	body, err := json.Marshal(struct {
		Input *webhook.Spec `json:"input"`
	}{webhook.SpecFor(a)})
	if err != nil {
		return p.fail(a, err)
	}
	result, err := p.query(ctx, body)
	if err != nil {
		return p.fail(a, err)
	}
	return p.decide(a, result)
}

// decide interprets the policy's result.
func (p *OPA) decide(a authz.Attributes, result json.RawMessage) (authz.Decision, string, error) {
	if len(result) == 0 {
		// OPA omits "result" when the rule is undefined: the policy has
		// nothing to say about this input, or the path is wrong.
		p.log.Warn("OPA policy undefined", "path", p.path, "user", a.User, "verb", a.Verb, "resource", a.Resource)
		return authz.Deny, fmt.Sprintf("OPA policy %s is undefined for this input", p.path), nil
	}
	var allowed bool
	if err := json.Unmarshal(result, &allowed); err == nil && !bytes.Equal(bytes.TrimSpace(result), []byte("null")) {
		if allowed {
			return authz.Allow, fmt.Sprintf("allowed by OPA policy %s", p.path), nil
		}
		return authz.Deny, fmt.Sprintf("denied by OPA policy %s", p.path), nil
	}
	var d struct {
		Allow  *bool  `json:"allow"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(result, &d); err != nil || d.Allow == nil {
		return p.fail(a, fmt.Errorf("policy %s returned %.100s; want true, false or {\"allow\": bool, \"reason\": string}", p.path, result))
	}
	if *d.Allow {
		if d.Reason == "" {
			d.Reason = fmt.Sprintf("allowed by OPA policy %s", p.path)
		}
		return authz.Allow, d.Reason, nil
	}
	if d.Reason == "" {
		d.Reason = fmt.Sprintf("denied by OPA policy %s", p.path)
	}
	return authz.Deny, d.Reason, nil
}

// query POSTs body and returns OPA's "result" (nil when undefined).
func (p *OPA) query(ctx context.Context, body []byte) (json.RawMessage, error) {
	code, data, err := webhook.PostJSON(ctx, p.client, p.endpoint, body, p.timeout)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		// OPA's error body has a code such as "internal_error" or
		// "invalid_parameter"; the message may quote the policy, so only
		// the code goes into a reason a client may see.
		var e struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			return nil, fmt.Errorf("HTTP status %d (%s)", code, e.Code)
		}
		return nil, fmt.Errorf("HTTP status %d", code)
	}
	var r struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	return r.Result, nil
}

// fail denies: OPA is a final authority, so not reaching it closes.
func (p *OPA) fail(a authz.Attributes, cause error) (authz.Decision, string, error) {
	p.log.Warn("OPA authorization failed", "url", p.redacted, "err", cause,
		"user", a.User, "verb", a.Verb, "resource", a.Resource, "request-id", a.RequestID)
	return authz.Deny, "OPA authorization failed (fail closed): " + cause.Error(), nil
}
