package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// HandshakeObserver is told about every failed server-side TLS handshake,
// so it can log it once per peer and cause.
type HandshakeObserver func(k Kind, peer net.Addr, err error)

// tlsListener completes TLS handshakes in the background and hands Accept
// only connections whose handshake succeeded: a client that never finishes
// its handshake (or speaks plaintext) cannot stall the accept loop, and
// every failure is reported once, with the peer's address.
type tlsListener struct {
	net.Listener
	kind    Kind
	cfg     *tls.Config
	timeout time.Duration
	observe HandshakeObserver
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	err     error
}

func newTLSListener(l net.Listener, k Kind, cfg *tls.Config, timeout time.Duration, observe HandshakeObserver) *tlsListener {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tl := &tlsListener{Listener: l, kind: k, cfg: cfg, timeout: timeout, observe: observe, conns: make(chan net.Conn), done: make(chan struct{})}
	go tl.acceptLoop()
	return tl
}

func (tl *tlsListener) acceptLoop() {
	for {
		c, err := tl.Listener.Accept()
		if err != nil {
			tl.err = err
			tl.Close()
			return
		}
		go tl.handshake(c)
	}
}

func (tl *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, tl.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), tl.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		if tl.observe != nil {
			tl.observe(tl.kind, c.RemoteAddr(), err)
		}
		// A browser or curl that spoke plain HTTP to an HTTPS port gets
		// an answer it can show, as Go's own HTTPS server gives.
		var rh tls.RecordHeaderError
		if tl.kind == REST && errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
			_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server: use https://\n")
		}
		c.Close()
		return
	}
	select {
	case tl.conns <- tc:
	case <-tl.done:
		tc.Close()
	}
}

func (tl *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-tl.conns:
		return c, nil
	case <-tl.done:
		if tl.err != nil {
			return nil, tl.err
		}
		return nil, net.ErrClosed
	}
}

func (tl *tlsListener) Close() error {
	var err error
	tl.once.Do(func() {
		close(tl.done)
		err = tl.Listener.Close()
	})
	return err
}

// observedCreds reports failed gRPC server handshakes.
type observedCreds struct {
	credentials.TransportCredentials
	observe HandshakeObserver
}

func (o observedCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := o.TransportCredentials.ServerHandshake(c)
	if err != nil && o.observe != nil {
		o.observe(RPC, c.RemoteAddr(), err)
	}
	return conn, info, err
}

func (o observedCreds) Clone() credentials.TransportCredentials {
	return observedCreds{o.TransportCredentials.Clone(), o.observe}
}

// hostCheckedCreds runs the Security's host name check after each gRPC
// client handshake, with the authority that was dialed.
type hostCheckedCreds struct {
	credentials.TransportCredentials
	sec *Security
}

func (h hostCheckedCreds) ClientHandshake(ctx context.Context, authority string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := h.TransportCredentials.ClientHandshake(ctx, authority, c)
	if err != nil {
		return conn, info, err
	}
	if ti, ok := info.(credentials.TLSInfo); ok {
		if err := h.sec.checkHost(RPC, authority, ti.State); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("TLS handshake with %s (%s connection): %w", authority, RPC, err)
		}
	}
	return conn, info, nil
}

func (h hostCheckedCreds) Clone() credentials.TransportCredentials {
	return hostCheckedCreds{h.TransportCredentials.Clone(), h.sec}
}

func looksLikeHTTP(h []byte) bool {
	for _, m := range []string{"GET ", "POST ", "HEAD ", "PUT ", "PATCH ", "DELETE ", "OPTIONS ", "CONNECT "} {
		n := min(len(h), len(m))
		if n >= 4 && string(h[:n]) == m[:n] {
			return true
		}
	}
	return false
}
