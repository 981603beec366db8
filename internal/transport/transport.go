// Package transport is the one place where sluice opens listeners and dials
// connections. Every row of the connection table in DESIGN.md goes through a
// Kind here, so securing a connection means giving its Kind a tls.Config and
// nothing else changes.
package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Kind names one kind of connection from the connection table.
type Kind string

// The connection kinds of DESIGN.md's connection table.
const (
	RPC  Kind = "rpc"  // connection 2: JM <-> TM control (gRPC)
	Data Kind = "data" // connection 3: TM -> TM data exchange
	Blob Kind = "blob" // connection 4: TM -> JM artifacts
	REST Kind = "rest" // connection 1: clients -> JM REST
)

// Security holds the TLS configuration of each connection kind. A kind
// without one is plaintext. The zero value is all plaintext. Configs are
// looked up on every Listen/Dial, so a Set takes effect for new connections.
type Security struct {
	mu     sync.RWMutex
	server map[Kind]*tls.Config
	client map[Kind]*tls.Config
	// Observe, when set, is told about failed server-side handshakes.
	Observe HandshakeObserver
	// HandshakeTimeout bounds a server-side TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// Describe, when set, turns a client-side handshake error into a
	// reason a person can act on.
	Describe func(error) string
	// CheckHost, when set, checks after each client-side handshake that
	// the server's certificate names host, the host that was dialed
	// (security.ssl.verify-hostname). It runs here rather than in the
	// tls.Config because the config's verification callback does not
	// know the host when it is an IP address (no SNI is sent for one).
	CheckHost func(k Kind, host string, cs tls.ConnectionState) error
}

// checkHost runs CheckHost for a connection to addr.
func (s *Security) checkHost(k Kind, addr string, cs tls.ConnectionState) error {
	if s.CheckHost == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return s.CheckHost(k, host, cs)
}

// Plaintext returns a Security with no TLS anywhere.
func Plaintext() *Security { return &Security{} }

// Set installs the server- and client-side TLS configs of a kind; nil turns
// TLS off for that side.
func (s *Security) Set(k Kind, server, client *tls.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server == nil {
		s.server = map[Kind]*tls.Config{}
		s.client = map[Kind]*tls.Config{}
	}
	s.server[k], s.client[k] = server, client
}

// ServerTLS returns the server-side TLS config of a kind, nil if plaintext.
func (s *Security) ServerTLS(k Kind) *tls.Config {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.server[k]
}

// ClientTLS returns the client-side TLS config of a kind, nil if plaintext.
func (s *Security) ClientTLS(k Kind) *tls.Config {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.client[k]
}

// Secured reports whether connections of kind k use TLS.
func (s *Security) Secured(k Kind) bool { return s.ServerTLS(k) != nil || s.ClientTLS(k) != nil }

// Listen opens a TCP listener for kind k on addr, wrapped in TLS when the
// kind is secured (handshakes complete before Accept returns a connection). gRPC kinds are not wrapped: gRPC does its own handshake
// with the credentials from GRPCServerOptions.
func (s *Security) Listen(ctx context.Context, k Kind, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s connections on %s: %w", k, addr, err)
	}
	if k == RPC {
		return l, nil
	}
	if cfg := s.ServerTLS(k); cfg != nil {
		return newTLSListener(l, k, cfg, s.HandshakeTimeout, s.Observe), nil
	}
	return l, nil
}

// ListenTLS opens a listener for kind k on addr with its own TLS config
// (nil: plaintext), for kinds whose listeners differ (named REST listeners).
func (s *Security) ListenTLS(ctx context.Context, k Kind, addr string, cfg *tls.Config) (net.Listener, error) {
	return s.ListenTLSObserved(ctx, k, addr, cfg, s.Observe)
}

// ListenTLSObserved is ListenTLS with its own observer of failed
// handshakes instead of s.Observe, for listeners whose failures are
// logged apart (the REST listeners' keys differ from the internal ones).
func (s *Security) ListenTLSObserved(ctx context.Context, k Kind, addr string, cfg *tls.Config, observe HandshakeObserver) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s connections on %s: %w", k, addr, err)
	}
	if cfg == nil {
		return l, nil
	}
	return newTLSListener(l, k, cfg, s.HandshakeTimeout, observe), nil
}

// Dial connects to addr for kind k, doing the TLS handshake when secured.
func (s *Security) Dial(ctx context.Context, k Kind, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	cfg := s.ClientTLS(k)
	if cfg == nil {
		return conn, nil
	}
	raw := &recordBatcher{Conn: conn}
	tconn := tls.Client(raw, cfg)
	hctx := ctx
	if s.HandshakeTimeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, s.HandshakeTimeout)
		defer cancel()
	}
	if err := tconn.HandshakeContext(hctx); err != nil {
		conn.Close()
		if s.Describe != nil {
			return nil, fmt.Errorf("TLS handshake with %s (%s connection): %s: %w", addr, k, s.Describe(err), err)
		}
		return nil, fmt.Errorf("TLS handshake with %s (%s connection): %w", addr, k, err)
	}
	if err := s.checkHost(k, addr, tconn.ConnectionState()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s (%s connection): %w", addr, k, err)
	}
	return &batchedTLSConn{Conn: tconn, raw: raw}, nil
}

// Dialer returns Dial bound to kind k.
func (s *Security) Dialer(k Kind) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) { return s.Dial(ctx, k, addr) }
}

// GRPCServerOptions returns the transport credentials of the RPC kind.
func (s *Security) GRPCServerOptions() []grpc.ServerOption {
	if cfg := s.ServerTLS(RPC); cfg != nil {
		return []grpc.ServerOption{grpc.Creds(observedCreds{credentials.NewTLS(cfg), s.Observe})}
	}
	return nil
}

// GRPCDialOptions returns the transport credentials of the RPC kind.
func (s *Security) GRPCDialOptions() []grpc.DialOption {
	if cfg := s.ClientTLS(RPC); cfg != nil {
		return []grpc.DialOption{grpc.WithTransportCredentials(hostCheckedCreds{credentials.NewTLS(cfg), s})}
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
}

// HTTPClient returns an HTTP client whose connections are dialled as kind k.
func (s *Security) HTTPClient(k Kind, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return s.Dial(ctx, k, addr)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}
