package jobmanager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/transport"
)

// restSecurity is what the REST listeners share: the REST TLS material,
// the authenticators, the failed-authentication limiter and the proxies
// whose forwarding headers are believed.
type restSecurity struct {
	store   *tlsconf.Store // nil when no listener uses TLS
	deps    authn.Deps
	limiter *authn.FailureLimiter
	proxies []netip.Prefix
}

func (jm *JobManager) setupRESTSecurity(ctx context.Context) (*restSecurity, error) {
	cfg := jm.cfg
	rs := &restSecurity{limiter: authn.NewFailureLimiter(cfg.Int("security.rest.authentication.failures.max"), cfg.Duration("security.rest.authentication.failures.window"))}
	anyTLS := false
	for _, l := range jm.listeners {
		anyTLS = anyTLS || l.TLS
	}
	if anyTLS {
		opts, err := tlsconf.RESTOptions(cfg)
		if err != nil {
			return nil, err
		}
		for _, n := range opts.Notes {
			jm.log.Info(n)
		}
		store, err := tlsconf.NewStore(opts, jm.log)
		if err != nil {
			return nil, err
		}
		go store.Run(ctx)
		rs.store = store
		mapper, err := authn.ParsePrincipalRules(cfg.String("security.rest.authentication.x509.principal-mapping-rules"))
		if err != nil {
			return nil, err
		}
		rs.deps.X509 = authn.NewX509(mapper)
		restLog := tlsconf.NewFailureLog(jm.log, "rest connection")
		restLog.Classify = store.Classify
		prev := jm.sec.Observe
		jm.sec.Observe = func(k transport.Kind, peer net.Addr, err error) {
			if k == transport.REST {
				restLog.Record(peer, err)
			} else if prev != nil {
				prev(k, peer, err)
			}
		}
	}
	if path := cfg.String("security.rest.authentication.token.file"); path != "" {
		tf, err := authn.NewTokenFile(path, jm.log)
		if err != nil {
			return nil, err
		}
		go tf.Run(ctx)
		rs.deps.Token = tf
	}
	if path := cfg.String(authn.KerberosKeytabKey); path != "" {
		k, err := authn.NewKerberos(authn.KerberosOptions{
			Keytab:              path,
			Principal:           cfg.String(authn.KerberosPrincipalKey),
			AllowInsecureKeytab: cfg.Bool("security.kerberos.login.allow-insecure-keytab"),
			Rules:               cfg.StringList("security.kerberos.principal-to-local"),
		})
		if err != nil {
			return nil, err
		}
		rs.deps.Kerberos = k
	}
	for _, p := range cfg.StringList("rest.trusted-proxies") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("rest.trusted-proxies: %q is neither an address nor a CIDR range", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		rs.proxies = append(rs.proxies, pfx)
	}
	return rs, nil
}

// tlsConfig is the server TLS config of one listener.
func (rs *restSecurity) tlsConfig(l Listener) *tls.Config {
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
	return rs.store.ServerConfig(p)
}

// trusted reports whether the direct peer is a trusted reverse proxy.
func (rs *restSecurity) trusted(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range rs.proxies {
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
func (rs *restSecurity) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !rs.trusted(r) {
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
		for _, p := range rs.proxies {
			inProxy = inProxy || p.Contains(a.Unmap())
		}
		if !inProxy {
			return h
		}
	}
	return host
}

type prefixKey struct{}

// ExternalPrefix is the path prefix under which clients reach the API
// (rest.base-path, or X-Forwarded-Prefix from a trusted proxy), for links.
func ExternalPrefix(ctx context.Context) string {
	s, _ := ctx.Value(prefixKey{}).(string)
	return s
}

// withBasePath serves the API under rest.base-path and believes
// X-Forwarded-Prefix only from trusted proxies.
func (rs *restSecurity) withBasePath(base string) filter {
	base = strings.TrimRight(base, "/")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			prefix := ""
			if base != "" {
				if r.URL.Path != base && !strings.HasPrefix(r.URL.Path, base+"/") {
					writeError(w, http.StatusNotFound, "this API is served under %s (rest.base-path)", base)
					return
				}
				r2 := r.Clone(r.Context())
				r2.URL.Path = strings.TrimPrefix(r.URL.Path, base)
				if r2.URL.Path == "" {
					r2.URL.Path = "/"
				}
				r2.URL.RawPath = ""
				r, prefix = r2, base
			}
			if fp := r.Header.Get("X-Forwarded-Prefix"); fp != "" && rs.trusted(r) && strings.HasPrefix(fp, "/") {
				prefix = strings.TrimRight(fp, "/") + prefix
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), prefixKey{}, prefix)))
		})
	}
}

type listenerKey struct{}

// ListenerName returns the name of the REST listener a request came in on.
func ListenerName(ctx context.Context) string {
	s, _ := ctx.Value(listenerKey{}).(string)
	return s
}

func withListener(name string) filter {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), listenerKey{}, name)))
		})
	}
}

func (rs *restServer) whoami(w http.ResponseWriter, r *http.Request) {
	u, ok := authn.UserFrom(r.Context())
	if !ok {
		writeError(w, http.StatusUnauthorized, "not authenticated")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"username": u.Name, "groups": nonNil(u.Groups), "method": u.Method, "listener": ListenerName(r.Context()),
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
