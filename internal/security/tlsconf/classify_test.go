package tlsconf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&VerifyError{UnknownCA, "certificate signed by an unknown CA (check security.ssl.internal.truststore)"}, "certificate signed by an unknown CA (check security.ssl.internal.truststore)"},
		{fmt.Errorf("TLS handshake with x (rpc): %w", &VerifyError{Reason: Expired}), "expired"},
		{errors.New("tls: client offered only unsupported versions: [302 301]"), "peer offered at most TLS 1.1; this side requires a version security.ssl.protocol allows"},
		{errors.New("tls: client offered only unsupported versions: [302]"), "peer offered only TLS 1.1"},
		{errors.New("tls: server selected unsupported protocol version 303"), "peer selected TLS 1.2"},
		{errors.New("tls: client didn't provide a certificate"), "no client certificate presented"},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: unknown certificate authority")}, "peer does not trust the CA"},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, "peer refused this side's certificate"},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, "peer requires a client certificate"},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: protocol version not supported")}, "security.ssl.protocol"},
		{x509.UnknownAuthorityError{}, "unknown CA"},
		{x509.CertificateInvalidError{Reason: x509.Expired, Detail: "x"}, "expired"},
		{io.EOF, "peer closed the connection"},
		{&net.OpError{Op: "read", Err: timeoutErr{}}, "handshake timed out (security.ssl.internal.handshake-timeout)"},
		{errors.New("something else"), "something else"},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); !strings.Contains(got, tt.want) {
			t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if Classify(nil) != "" {
		t.Error("Classify(nil)")
	}
	s := NewStoreFromMaterial(getPKI(t).jm, nil, Options{KeyPrefix: restPrefix, Protocols: []string{"TLSv1.2", "TLSv1.3"}}, nil)
	if got := s.Classify(errors.New("tls: client offered only unsupported versions: [302]")); !strings.Contains(got, "requires TLS 1.2 to TLS 1.3") {
		t.Errorf("Store.Classify = %q", got)
	}
	if got := s.Classify(x509.UnknownAuthorityError{}); !strings.Contains(got, "security.ssl.rest.truststore") {
		t.Errorf("Store.Classify = %q", got)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestFailureLog(t *testing.T) {
	log, buf := newLogger()
	fl := NewFailureLog(log, "rpc server")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fl.now = func() time.Time { return now }
	a1 := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1000}
	a1b := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 2000}
	a2 := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1000}
	unknown := &VerifyError{UnknownCA, "certificate signed by an unknown CA"}

	fl.Record(a1, unknown)
	fl.Record(a1b, unknown) // same host, other port: a repeat
	fl.Record(a1, unknown)
	fl.Record(a2, unknown)                                                // other host: logged
	fl.Record(a1, errors.New("tls: client didn't provide a certificate")) // other reason: logged
	if n := buf.count("TLS handshake failed"); n != 3 {
		t.Fatalf("%d first-failure lines:\n%s", n, buf)
	}
	if !strings.Contains(buf.String(), "peer=10.0.0.1:1000") {
		t.Errorf("peer address missing:\n%s", buf)
	}
	now = now.Add(30 * time.Second)
	fl.Record(a1, unknown)
	if buf.count("repeated") != 0 {
		t.Fatalf("summary too early:\n%s", buf)
	}
	now = now.Add(31 * time.Second)
	fl.Record(a1, unknown)
	if buf.count("repeated") != 1 || !strings.Contains(buf.String(), "count=4") {
		t.Errorf("want one summary with count=4:\n%s", buf)
	}
	fl.Record(a1, unknown)
	if buf.count("repeated") != 1 {
		t.Errorf("summary more than once a minute:\n%s", buf)
	}
}
