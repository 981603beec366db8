package taskmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/transport"
)

// metricsListenerName names the metrics endpoint in authentication logs.
const metricsListenerName = "taskmanager-metrics"

// metricsEndpoint is the TaskManager's /metrics listener and its handler.
type metricsEndpoint struct {
	listener net.Listener
	handler  http.Handler
	scheme   string // http or https
	security string // what protects it, for the start-up log
}

// listenMetrics opens /metrics on taskmanager.metrics.bind-host. The page
// names every job id and operator the TaskManager runs, so it is served on
// loopback by default, as plain HTTP; bound anywhere else it requires TLS
// and authentication with the REST API's material and authenticators (the
// same configuration file serves both, as in Flink):
//
//   - TLS: security.ssl.rest.enabled with security.ssl.rest.keystore;
//   - client certificates: security.ssl.rest.authentication-enabled with
//     security.ssl.rest.truststore (or cert.fingerprint), mapped by
//     security.rest.authentication.x509.principal-mapping-rules;
//   - bearer tokens: security.rest.authentication.token.file.
//
// Either authenticator is enough; with both, a client uses either.
func (tm *TaskManager) listenMetrics(ctx context.Context) (*metricsEndpoint, error) {
	mc, err := newMetricsSecurity(tm.cfg, tm.set.Metrics, tm.log)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(bindAll(mc.host), fmt.Sprint(tm.set.Metrics.Port))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(tm.metricsRegistry(), promhttp.HandlerOpts{}))

	if mc.store == nil {
		l, err := tm.sec.ListenTLS(ctx, transport.REST, addr, nil)
		if err != nil {
			return nil, fmt.Errorf("taskmanager.metrics.bind-host / taskmanager.metrics.port: %w", err)
		}
		return &metricsEndpoint{listener: l, handler: mux, scheme: "http", security: "loopback only, plaintext, no authentication"}, nil
	}
	go mc.store.Run(ctx)
	if mc.tokens != nil {
		go mc.tokens.Run(ctx)
	}
	handler := authn.Filter(authn.FilterOptions{
		Listener: metricsListenerName,
		Chain:    mc.chain,
		Limiter:  mc.limiter,
		Log:      tm.log,
	})(mux)
	// Failed handshakes (plain HTTP, unknown client CA) are logged once
	// per peer and cause, as on the REST API.
	failures := tlsconf.NewFailureLog(tm.log, "metrics connection")
	failures.Classify = mc.store.Classify
	msec := &transport.Security{
		HandshakeTimeout: tm.sec.HandshakeTimeout,
		Observe:          func(_ transport.Kind, peer net.Addr, err error) { failures.Record(peer, err) },
	}
	l, err := msec.ListenTLS(ctx, transport.REST, addr, mc.store.ServerConfig(mc.policy))
	if err != nil {
		return nil, fmt.Errorf("taskmanager.metrics.bind-host / taskmanager.metrics.port: %w", err)
	}
	return &metricsEndpoint{listener: l, handler: handler, scheme: "https", security: "TLS, authentication: " + strings.Join(mc.methods, ", ")}, nil
}

// metricsSecurity is what protects the metrics endpoint, built from the
// configuration before anything is bound or started (newMetricsSecurity),
// so that Validate and start-up refuse the same settings.
type metricsSecurity struct {
	host    string
	store   *tlsconf.Store // nil on loopback: plain HTTP
	tokens  *authn.TokenFile
	chain   authn.Union
	limiter *authn.FailureLimiter
	policy  tlsconf.PeerPolicy
	methods []string
}

func newMetricsSecurity(cfg *config.Config, set MetricsSettings, log *slog.Logger) (*metricsSecurity, error) {
	host := set.BindHost
	mc := &metricsSecurity{host: host}
	// On loopback the endpoint stays Flink's plain HTTP even where the
	// shared configuration file enables REST TLS for the JobManager: a
	// TaskManager host need not hold the REST key store for it.
	if isLoopback(host) {
		return mc, nil
	}
	if !set.TLS {
		return nil, fmt.Errorf("taskmanager.metrics.bind-host is %q, which is not loopback: the metrics endpoint shows every job id and operator name, so off loopback it needs TLS and authentication: "+
			"set security.ssl.rest.enabled: true with security.ssl.rest.keystore, and security.ssl.rest.authentication-enabled: true with security.ssl.rest.truststore (client certificates) "+
			"and/or security.rest.authentication.token.file (bearer tokens); or set taskmanager.metrics.bind-host: 127.0.0.1", host)
	}

	opts, err := tlsconf.RESTOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("taskmanager metrics TLS: %w", err)
	}
	if opts.Keystore == "" {
		return nil, errors.New("taskmanager metrics TLS: security.ssl.rest.enabled is true but security.ssl.rest.keystore is not set: set it to the key store with the certificate the metrics endpoint presents")
	}
	if mc.store, err = tlsconf.NewStore(opts, log); err != nil {
		return nil, fmt.Errorf("taskmanager metrics TLS: %w", err)
	}

	var deps authn.Deps
	if set.ClientCerts {
		mapper, err := authn.ParsePrincipalRules(set.PrincipalRules)
		if err != nil {
			return nil, err
		}
		deps.X509 = authn.NewX509(mapper)
		mc.methods = append(mc.methods, authn.MethodX509)
	}
	if path := set.TokenFile; path != "" {
		tf, err := authn.NewTokenFile(path, log)
		if err != nil {
			return nil, err
		}
		mc.tokens, deps.Token = tf, tf
		mc.methods = append(mc.methods, authn.MethodToken)
	}
	// A certificate presented is verified in the handshake; one missing
	// is left to the authentication filter, so a client without any
	// credential gets a 401 that says what is accepted, not a TLS alert.
	mc.policy = tlsconf.PeerPolicy{SkipIdentity: true, NoClientCert: deps.X509 == nil, ClientCertOptional: deps.X509 != nil}
	if len(mc.methods) == 0 {
		return nil, fmt.Errorf("taskmanager.metrics.bind-host is %q, which is not loopback: the metrics endpoint needs authentication there: "+
			"set security.ssl.rest.authentication-enabled: true with security.ssl.rest.truststore (client certificates) and/or %s (bearer tokens)", host, authn.TokenFileKey)
	}
	if mc.chain, err = authn.Build(mc.methods, deps); err != nil {
		return nil, err
	}
	if mc.limiter, err = authn.FailureLimiterFromConfig(cfg); err != nil {
		return nil, err
	}
	return mc, nil
}

// bindAll maps Flink's "bind to everything" spellings to Go's.
func bindAll(h string) string {
	if h == "0.0.0.0" || h == "*" {
		return ""
	}
	return h
}

// isLoopback reports whether binding to host keeps a listener on this
// machine. Only literal loopback addresses and "localhost" count: another
// host name may resolve elsewhere tomorrow.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// metricsRegistry holds what /metrics exports: this TaskManager's tasks and
// network, and the Go runtime and process collectors a JobManager exports
// too, so a TaskManager's memory, goroutines and file descriptors are
// watched the same way.
func (tm *TaskManager) metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&tmCollector{tm: tm}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
