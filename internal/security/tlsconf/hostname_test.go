package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
)

// TestCheckHost: with security.ssl.verify-hostname the server certificate
// must name the dialed host (DNS or IP SAN); false, fingerprint pinning
// only, and an own certificate without host names (Flink's shared
// certificate) skip the check, the last one with a warning logged once.
func TestCheckHost(t *testing.T) {
	p := getPKI(t)
	withHosts := issue(t, p.ca1, p.ca1Key, "jm", leafOpts{uri: "spiffe://c1/jobmanager", hosts: []string{"jm.example.com", "127.0.0.1"}})
	ownWithHosts := issue(t, p.ca1, p.ca1Key, "tm", leafOpts{uri: "spiffe://c1/taskmanager/tm1", hosts: []string{"localhost"}})
	state := func(c tls.Certificate) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}
	}
	tests := []struct {
		name    string
		own     tls.Certificate
		pinOnly bool
		verify  bool
		host    string
		wantErr bool
	}{
		{name: "DNS name carried", own: ownWithHosts, verify: true, host: "jm.example.com"},
		{name: "IP carried", own: ownWithHosts, verify: true, host: "127.0.0.1"},
		{name: "name not carried", own: ownWithHosts, verify: true, host: "localhost", wantErr: true},
		{name: "IP not carried", own: ownWithHosts, verify: true, host: "10.0.0.1", wantErr: true},
		{name: "verify-hostname false", own: ownWithHosts, verify: false, host: "localhost"},
		{name: "fingerprint pinning only", own: ownWithHosts, pinOnly: true, verify: true, host: "localhost"},
		{name: "own certificate names no host", own: p.tm, verify: true, host: "localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := newLogger()
			roots := p.roots1
			if tc.pinOnly {
				roots = nil
			}
			s := NewStoreFromMaterial(tc.own, roots, Options{VerifyHostname: tc.verify}, log)
			err := s.CheckHost(tc.host, state(withHosts))
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason != HostnameMismatch {
				t.Fatalf("err = %v, want %s", err, HostnameMismatch)
			}
			for _, want := range []string{`host "` + tc.host + `"`, "jm.example.com, 127.0.0.1", KeyVerifyHostname} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
		})
	}
	t.Run("no host names warned once", func(t *testing.T) {
		log, buf := newLogger()
		s := NewStoreFromMaterial(p.tm, p.roots1, Options{VerifyHostname: true}, log)
		for range 3 {
			if err := s.CheckHost("localhost", state(withHosts)); err != nil {
				t.Fatal(err)
			}
		}
		if n := buf.count("names no host"); n != 1 {
			t.Errorf("warned %d times, want once:\n%s", n, buf.String())
		}
	})
}
