// Package webhook implements an authz.Authorizer that asks an external
// HTTPS service, in the manner of Kubernetes' webhook authorizer
// (plugin/pkg/authorizer/webhook).
//
// sluice POSTs an AccessReview with the request's Spec; the service answers
// with a ReviewStatus: allowed (Allow), denied (Deny) or neither
// (NoOpinion, so a union can ask the next authorizer). Answers are cached
// per identical request, allows longer than denials. When the service
// cannot be asked — timeout, error status, garbage, untrusted certificate,
// no connection — the answer is the configured failure policy: Deny (fail
// closed, the default) or NoOpinion. It is never Allow.
package webhook

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-dev/sluice/internal/security/authz"
)

// Defaults for Options.
const (
	DefaultTimeout         = 3 * time.Second
	DefaultCacheTTLAllowed = 5 * time.Minute
	DefaultCacheTTLDenied  = 30 * time.Second
)

// Failure policies for Options.FailurePolicy.
const (
	FailureDeny      = "deny"
	FailureNoOpinion = "no-opinion"
)

// maxResponse bounds the answer read from the service: a status is a few
// hundred bytes, and a misbehaving service must not exhaust memory.

// Options configures a Webhook.
type Options struct {
	URL     string        // https URL of the service
	Timeout time.Duration // per request; default 3s
	// CacheTTLAllowed and CacheTTLDenied are how long an answer is reused
	// for an identical request (NoOpinion counts as denied). Zero means
	// the default; negative disables caching of that kind.
	CacheTTLAllowed, CacheTTLDenied time.Duration
	FailurePolicy                   string      // "deny" (default) or "no-opinion"
	TLS                             *tls.Config // trust store and optional client certificate; nil: system roots
	Log                             *slog.Logger

	// allowHTTP lets tests use plain http. Unexported so no configuration
	// can send identities and decisions in clear text.
	allowHTTP bool
}

// Webhook is an authz.Authorizer backed by an external HTTPS service.
type Webhook struct {
	url       string
	redacted  string // url without credentials, for logs
	client    *http.Client
	timeout   time.Duration
	ttlAllow  time.Duration
	ttlDeny   time.Duration
	failDeny  bool
	log       *slog.Logger
	cache     *decisionCache
	nowForTTL func() time.Time
}

var _ authz.Authorizer = (*Webhook)(nil)

// New returns a Webhook for o. It fails if the URL is not https.
func New(o Options) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("authorization webhook: invalid URL %q: set security.authorization.webhook.url to https://host[:port]/path", o.URL)
	}
	if u.Scheme != "https" && !(o.allowHTTP && u.Scheme == "http") {
		return nil, fmt.Errorf("authorization webhook: URL %s is not https: identities and decisions must not travel in clear text; fix security.authorization.webhook.url", u.Redacted())
	}
	w := &Webhook{
		url:       o.URL,
		redacted:  u.Redacted(),
		timeout:   o.Timeout,
		ttlAllow:  o.CacheTTLAllowed,
		ttlDeny:   o.CacheTTLDenied,
		log:       o.Log,
		cache:     newDecisionCache(maxCacheEntries),
		nowForTTL: time.Now,
	}
	switch o.FailurePolicy {
	case "", FailureDeny:
		w.failDeny = true
	case FailureNoOpinion:
	default:
		return nil, fmt.Errorf("authorization webhook: failure policy %q: want deny or no-opinion (security.authorization.webhook.failure-policy)", o.FailurePolicy)
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.ttlAllow == 0 {
		w.ttlAllow = DefaultCacheTTLAllowed
	}
	if w.ttlDeny == 0 {
		w.ttlDeny = DefaultCacheTTLDenied
	}
	if w.log == nil {
		w.log = slog.Default()
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
	w.client = &http.Client{
		Transport: &http.Transport{
			// No proxy from the environment: authorization traffic goes
			// where the operator configured it, not where HTTPS_PROXY says.
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: w.timeout}).DialContext,
			TLSClientConfig:     tc,
			TLSHandshakeTimeout: w.timeout,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// A redirect could lead to a host, or a scheme, nobody vetted:
		// treat it as the non-200 answer it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Close releases idle connections to the service.
func (w *Webhook) Close() { w.client.CloseIdleConnections() }

// Authorize asks the service about a, or answers from the cache. A failure
// to ask yields the failure policy's decision with a nil error: the
// decision is made, and the reason says why.
func (w *Webhook) Authorize(ctx context.Context, a authz.Attributes) (authz.Decision, string, error) {
	body, err := json.Marshal(AccessReview{APIVersion: APIVersion, Kind: Kind, Spec: SpecFor(a)})
	if err != nil { // cannot happen with these types; still, fail closed
		return w.fail(a, err)
	}
	cacheable := len(body) <= maxCachedRequest
	key := string(body)
	if cacheable {
		if d, reason, ok := w.cache.get(key, w.nowForTTL()); ok {
			return d, reason, nil
		}
	}

	st, err := w.ask(ctx, body)
	if err != nil {
		return w.fail(a, err)
	}
	d := authz.NoOpinion
	switch {
	case st.Denied: // denied wins over a contradictory allowed
		d = authz.Deny
	case st.Allowed:
		d = authz.Allow
	}
	if cacheable {
		ttl := w.ttlDeny
		if d == authz.Allow {
			ttl = w.ttlAllow
		}
		if ttl > 0 {
			w.cache.put(key, d, st.Reason, w.nowForTTL().Add(ttl))
		}
	}
	return d, st.Reason, nil
}

// ask POSTs body and returns the service's status.
func (w *Webhook) ask(ctx context.Context, body []byte) (*ReviewStatus, error) {
	code, data, err := PostJSON(ctx, w.client, w.url, body, w.timeout)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", code)
	}
	var r AccessReview
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	if r.Status == nil {
		return nil, errors.New("malformed answer: no status")
	}
	return r.Status, nil
}

// fail returns the failure policy's decision. Failures are not cached, so
// the service is asked again as soon as it may have recovered.
func (w *Webhook) fail(a authz.Attributes, cause error) (authz.Decision, string, error) {
	w.log.Warn("authorization webhook failed", "url", w.redacted, "err", cause,
		"user", a.User, "verb", a.Verb, "resource", a.Resource, "request-id", a.RequestID)
	if w.failDeny {
		return authz.Deny, "authorization webhook failed (fail closed): " + cause.Error(), nil
	}
	return authz.NoOpinion, "authorization webhook failed (no opinion): " + cause.Error(), nil
}
