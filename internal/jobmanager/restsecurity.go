package jobmanager

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/restapi"
	"github.com/sluice-dev/sluice/internal/security/audit"
	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/transport"
)

// restSecurity is everything the REST listeners' handler chains need, built
// and validated in one place (newRESTSecurity) before any port is bound, so
// a bad setting stops start-up instead of leaving half a JobManager
// listening: the REST TLS material, one authentication chain per listener,
// the failed-authentication limiter, the proxies whose forwarding headers
// are believed, the authorizer, the audit log and the reloaders.
type restSecurity struct {
	basePath string // rest.base-path without its trailing slash

	store   *tlsconf.Store      // nil when no listener uses TLS
	tlsLog  *tlsconf.FailureLog // failed REST handshakes; nil without TLS
	authn   *authn.Authenticators
	chains  map[string]authn.Union // by listener name
	limiter *authn.FailureLimiter
	proxies []netip.Prefix

	// sessions are the dashboard's logins; login is offered on the
	// listeners in loginOn (TLS and token authentication).
	sessions *authn.SessionStore
	loginOn  map[string]bool

	authz     *decider
	audit     *audit.Logger // nil: no audit log
	reloaders []Reloader

	// run starts what keeps the pieces fresh (file watchers) until ctx is
	// done; each is owned by the JobManager's Run.
	runners []func(ctx context.Context)
}

// newRESTSecurity builds the REST API's security from cfg for listeners.
// It starts nothing: run does, once the JobManager is committed to start.
// Errors name the key to fix.
func newRESTSecurity(cfg *config.Config, set Settings, extra []Reloader, log *slog.Logger) (*restSecurity, error) {
	listeners := set.Listeners
	s := &restSecurity{basePath: set.BasePath, proxies: set.TrustedProxies}
	lim, err := authn.FailureLimiterFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	s.limiter = lim
	anyTLS := false
	for _, l := range listeners {
		anyTLS = anyTLS || l.TLS
	}
	if anyTLS {
		opts, err := tlsconf.RESTOptions(cfg)
		if err != nil {
			return nil, err
		}
		for _, n := range opts.Notes {
			log.Info(n)
		}
		store, err := tlsconf.NewStore(opts, log)
		if err != nil {
			return nil, err
		}
		s.store = store
		s.runners = append(s.runners, store.Run)
		s.reloaders = append(s.reloaders, Reloader{Name: "rest-tls", Kind: ReloadCertificates, Reload: store.Reload})
		s.tlsLog = tlsconf.NewFailureLog(log, "rest connection")
		s.tlsLog.Classify = store.Classify
	}
	if s.authn, err = authn.FromConfig(cfg, authn.ConfigOptions{TLS: anyTLS, Log: log}); err != nil {
		return nil, err
	}
	s.runners = append(s.runners, s.authn.Run)
	if s.authn.TokenFile != nil {
		s.reloaders = append(s.reloaders, Reloader{Name: "token-file", Kind: ReloadTokenFile, Reload: s.authn.TokenFile.Reload})
	}
	so := authn.SessionOptions{
		IdleTimeout:     cfg.Duration(authn.SessionIdleTimeoutKey),
		AbsoluteTimeout: cfg.Duration(authn.SessionAbsoluteTimeoutKey),
		Max:             cfg.Int(authn.SessionMaxKey),
	}
	if so.IdleTimeout > so.AbsoluteTimeout {
		return nil, fmt.Errorf("%s (%s) is longer than %s (%s): a session would end before it could idle out; lower the idle timeout or raise the absolute one",
			authn.SessionIdleTimeoutKey, so.IdleTimeout, authn.SessionAbsoluteTimeoutKey, so.AbsoluteTimeout)
	}
	if tf := s.authn.TokenFile; tf != nil {
		so.Revalidate = tf.UserOf
	}
	s.sessions = authn.NewSessionStore(so)
	s.runners = append(s.runners, s.sessions.Run)
	s.loginOn = map[string]bool{}
	s.chains = map[string]authn.Union{}
	for _, l := range listeners {
		chain, err := authn.Build(l.Authentication, s.authn.Deps)
		if err != nil {
			return nil, fmt.Errorf("REST listener %q: %w", l.Name, err)
		}
		if ok, _ := loginOffered(l); ok {
			// The session comes first: the browser that holds it sends
			// no other credential, and a client certificate offered on
			// the same connection must not hide whose session it is.
			chain = append(authn.Union{s.sessions.Authenticator(l.Name)}, chain...)
			s.loginOn[l.Name] = true
		}
		s.chains[l.Name] = chain
	}
	az, err := newAuthorization(cfg, set, log)
	if err != nil {
		return nil, err
	}
	s.authz = az.decider
	s.runners = append(s.runners, az.runners...)
	s.reloaders = append(s.reloaders, az.reloaders...)
	if s.audit, err = audit.FromConfig(cfg); err != nil {
		return nil, err
	}
	s.reloaders = append(s.reloaders, extra...)
	return s, nil
}

// run starts the watchers and closes the audit log when ctx is done, in
// goroutines spawn starts and owns. The goroutines end with ctx.
func (s *restSecurity) run(ctx context.Context, spawn func(func()) bool) {
	for _, r := range s.runners {
		spawn(func() { r(ctx) })
	}
	if s.audit != nil {
		spawn(func() { <-ctx.Done(); s.audit.Close() })
	}
}

// listen opens the listener l with its TLS config; failed handshakes go to
// the REST failure log.
func (s *restSecurity) listen(ctx context.Context, sec *transport.Security, l Listener) (net.Listener, error) {
	var observe transport.HandshakeObserver
	if s.tlsLog != nil {
		audited := auditHandshakeFailure(s.audit, l.Name, s.store.Classify)
		observe = func(_ transport.Kind, peer net.Addr, err error) {
			s.tlsLog.Record(peer, err)
			audited(peer, err)
		}
	}
	return sec.ListenTLSObserved(ctx, transport.REST, l.Address, s.tlsConfig(l), observe)
}

// tlsConfig is the server TLS config of one listener.
func (s *restSecurity) tlsConfig(l Listener) *tls.Config {
	if !l.TLS {
		return nil
	}
	p := tlsconf.PeerPolicy{SkipIdentity: true}
	switch l.ClientAuth {
	case "none":
		p.NoClientCert = true
	case "request":
		p.ClientCertOptional = true
	}
	return s.store.ServerConfig(p)
}

// trusted reports whether the direct peer is a trusted reverse proxy.
func (s *restSecurity) trusted(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddr is the client's address: the direct peer, or, behind a
// trusted proxy, the last address X-Forwarded-For names that is not itself
// a trusted proxy. Headers from anyone else are ignored: a client must not
// pick its own address for the failed-authentication limiter.
func (s *restSecurity) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(r) {
		return host
	}
	hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(h)
		if err != nil {
			continue
		}
		inProxy := false
		for _, p := range s.proxies {
			inProxy = inProxy || p.Contains(a.Unmap())
		}
		if !inProxy {
			return h
		}
	}
	return host
}

func (rs *restServer) whoami(w http.ResponseWriter, r *http.Request) {
	u, ok := authn.UserFrom(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, "not authenticated")
		return
	}
	writeJSON(w, http.StatusOK, restapi.Identity{
		Username: u.Name, Groups: nonNil(u.Groups), Method: u.Method, Listener: ListenerName(r.Context()),
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
