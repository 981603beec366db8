package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

func reasonOf(err error) Reason {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

func TestHandshakePolicy(t *testing.T) {
	p := getPKI(t)
	jmOnly, tmOnly := []Role{RoleJobManager}, []Role{RoleTaskManager}
	tests := []struct {
		name                 string
		srvCert, cliCert     tls.Certificate
		srvRoots, cliRoots   *x509.CertPool
		srvPolicy, cliPolicy PeerPolicy
		srvOpts, cliOpts     Options
		wantSrv, wantCli     Reason // refusal by that side; "" = none
		wantAdmitted         bool
		classify             string // substring of Classify of the refusing side's error
		rawClient            bool   // client is a plain tls.Config that accepts anything (an attacker's)
	}{
		{name: "admitted TM to JM", srvCert: p.jm, cliCert: p.tm, srvPolicy: PeerPolicy{Allow: tmOnly}, cliPolicy: PeerPolicy{Allow: jmOnly}, wantAdmitted: true},
		{name: "admitted any role", srvCert: p.tm, cliCert: p.tm2, wantAdmitted: true},
		{name: "unknown CA", srvCert: p.jm, cliCert: p.tmOtherCA, wantSrv: UnknownCA, classify: "certificate signed by an unknown CA (check security.ssl.internal.truststore)"},
		{name: "client does not trust server CA", srvCert: p.jm, cliCert: p.tm, cliRoots: p.roots2, wantCli: UnknownCA},
		{name: "expired", srvCert: p.jm, cliCert: p.expired, wantSrv: Expired, classify: "expired at " + p.expired.Leaf.NotAfter.UTC().Format(time.RFC3339)},
		{name: "not yet valid", srvCert: p.jm, cliCert: p.notYet, wantSrv: NotYetValid, classify: "not valid before"},
		{name: "expired server", srvCert: p.expired, cliCert: p.jm, wantCli: Expired},
		{name: "TM may not act as JM", srvCert: p.tm, cliCert: p.tm2, cliPolicy: PeerPolicy{Allow: jmOnly}, wantCli: IdentityNotAllowed,
			classify: "peer identity spiffe://c1/taskmanager/tm1 is not allowed here (want jobmanager)"},
		{name: "role not allowed by server", srvCert: p.jm, cliCert: p.tm, srvPolicy: PeerPolicy{Allow: jmOnly}, wantSrv: IdentityNotAllowed},
		{name: "foreign cluster", srvCert: p.jm, cliCert: p.foreign, rawClient: true, wantSrv: ForeignCluster, classify: `belongs to cluster "c2"`},
		{name: "foreign cluster server", srvCert: p.jm, cliCert: p.foreign, wantCli: ForeignCluster, classify: `belongs to cluster "c1", not "c2"`},
		{name: "peer without identity", srvCert: p.jm, cliCert: p.shared, wantSrv: NoIdentity, classify: "carries no identity"},
		{name: "own malformed identity fails closed", srvCert: p.malformed, cliCert: p.tm, wantCli: BadCertificate},
		{name: "malformed identity", srvCert: p.jm, cliCert: p.malformed, rawClient: true, wantSrv: BadCertificate, classify: "not a sluice identity"},
		{name: "optional client cert, none given", srvCert: p.jm, srvPolicy: PeerPolicy{ClientCertOptional: true}, wantAdmitted: true},
		{name: "optional client cert, bad one given", srvCert: p.jm, cliCert: p.tmOtherCA, srvPolicy: PeerPolicy{ClientCertOptional: true}, wantSrv: UnknownCA},
		{name: "SHA-1 pin matches", srvCert: p.jm, cliCert: p.tm, srvOpts: Options{Fingerprints: FormatSHA1(p.tm.Leaf)}, wantAdmitted: true},
		{name: "SHA-256 pin matches (lowercase, no colons)", srvCert: p.jm, cliCert: p.tm,
			srvOpts: Options{Fingerprints: FormatSHA256(p.jm.Leaf) + ", " + strings.ToLower(strings.ReplaceAll(FormatSHA256(p.tm.Leaf), ":", ""))}, wantAdmitted: true},
		{name: "SHA-1 pin mismatch", srvCert: p.jm, cliCert: p.tm, srvOpts: Options{Fingerprints: FormatSHA1(p.tm2.Leaf)}, wantSrv: FingerprintMismatch,
			classify: "certificate fingerprint does not match security.ssl.internal.cert.fingerprint"},
		{name: "SHA-256 pin mismatch on client", srvCert: p.jm, cliCert: p.tm, cliOpts: Options{Fingerprints: FormatSHA256(p.tm2.Leaf)}, wantCli: FingerprintMismatch},
		{name: "pinning only (no truststore), match", srvCert: p.jm, cliCert: p.tm, srvRoots: &x509.CertPool{}, srvOpts: Options{Fingerprints: FormatSHA256(p.tm.Leaf)}, wantAdmitted: true},
		{name: "pinning only, expired pinned cert", srvCert: p.jm, cliCert: p.expired, srvRoots: &x509.CertPool{}, srvOpts: Options{Fingerprints: FormatSHA256(p.expired.Leaf)}, wantSrv: Expired},
		{name: "no trust material at all", srvCert: p.jm, cliCert: p.tm, srvRoots: &x509.CertPool{}, wantSrv: UnknownCA},
		{name: "shared certificates", srvCert: p.shared, cliCert: p.shared2, wantAdmitted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := func(r *x509.CertPool) *x509.CertPool {
				switch {
				case r == nil:
					return p.roots1
				case r.Equal(&x509.CertPool{}):
					return nil // marker: no trust store
				}
				return r
			}
			srv := NewStoreFromMaterial(tt.srvCert, roots(tt.srvRoots), tt.srvOpts, nil)
			cli := NewStoreFromMaterial(tt.cliCert, roots(tt.cliRoots), tt.cliOpts, nil)
			cliCfg := cli.ClientConfig(tt.cliPolicy)
			if tt.rawClient {
				cliCfg = &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{tt.cliCert}}
			}
			res := handshake(t, srv.ServerConfig(tt.srvPolicy), cliCfg)
			if tt.wantAdmitted {
				if res.serverErr != nil || res.clientErr != nil {
					t.Fatalf("want admitted; server: %v; client: %v", res.serverErr, res.clientErr)
				}
				if res.clientPeer.Subject.CommonName != tt.srvCert.Leaf.Subject.CommonName {
					t.Errorf("client saw %s", res.clientPeer.Subject)
				}
				return
			}
			refusing, other, want := res.serverErr, res.clientErr, tt.wantSrv
			if tt.wantCli != "" {
				refusing, other, want = res.clientErr, res.serverErr, tt.wantCli
			}
			if got := reasonOf(refusing); got != want {
				t.Fatalf("reason = %q (err %v), want %q; other side: %v", got, refusing, want, other)
			}
			if other == nil {
				t.Errorf("other side saw no error")
			} else if c := Classify(other); !strings.Contains(c, "peer") {
				t.Errorf("other side's Classify = %q, want it to say the peer refused", c)
			}
			if c := Classify(refusing); tt.classify != "" && !strings.Contains(c, tt.classify) {
				t.Errorf("Classify = %q, want it to contain %q", c, tt.classify)
			}
		})
	}
}

func TestNoClientCertificate(t *testing.T) {
	p := getPKI(t)
	srv := NewStoreFromMaterial(p.jm, p.roots1, Options{}, nil)
	cli := NewStoreFromMaterial(tls.Certificate{}, p.roots1, Options{}, nil)
	res := handshake(t, srv.ServerConfig(PeerPolicy{}), cli.ClientConfig(PeerPolicy{}))
	if got := Classify(res.serverErr); got != "no client certificate presented" {
		t.Errorf("server: Classify(%v) = %q", res.serverErr, got)
	}
	if got := Classify(res.clientErr); !strings.Contains(got, "requires a client certificate") {
		t.Errorf("client: Classify(%v) = %q", res.clientErr, got)
	}
}

func TestVersions(t *testing.T) {
	p := getPKI(t)
	srv13 := NewStoreFromMaterial(p.jm, p.roots1, Options{}, nil)
	srv12 := NewStoreFromMaterial(p.jm, p.roots1, Options{Protocols: []string{"TLSv1.2"}}, nil)
	cli12 := NewStoreFromMaterial(p.tm, p.roots1, Options{Protocols: []string{"TLSv1.2"}}, nil)
	cliBoth := NewStoreFromMaterial(p.tm, p.roots1, Options{Protocols: []string{"TLSv1.3", "TLSv1.2"}}, nil)

	t.Run("1.2 client vs 1.3-only server", func(t *testing.T) {
		res := handshake(t, srv13.ServerConfig(PeerPolicy{}), cli12.ClientConfig(PeerPolicy{}))
		got := srv13.Classify(res.serverErr)
		if !strings.Contains(got, "TLS 1.2") || !strings.Contains(got, "this side requires TLS 1.3 (security.ssl.protocol)") {
			t.Errorf("server: %q (%v)", got, res.serverErr)
		}
		if got := Classify(res.clientErr); !strings.Contains(got, "security.ssl.protocol") {
			t.Errorf("client: %q (%v)", got, res.clientErr)
		}
	})
	t.Run("TLS 1.1 client refused", func(t *testing.T) {
		cli := cli12.ClientConfig(PeerPolicy{})
		cli.MinVersion, cli.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
		res := handshake(t, srv12.ServerConfig(PeerPolicy{}), cli)
		got := srv12.Classify(res.serverErr)
		if !strings.Contains(got, "peer offered only TLS 1.1") || !strings.Contains(got, "requires TLS 1.2") {
			t.Errorf("server: %q (%v)", got, res.serverErr)
		}
	})
	t.Run("1.2 both sides", func(t *testing.T) {
		res := handshake(t, srv12.ServerConfig(PeerPolicy{}), cliBoth.ClientConfig(PeerPolicy{}))
		if res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("server: %v; client: %v", res.serverErr, res.clientErr)
		}
	})
}

func TestPlaintextClient(t *testing.T) {
	p := getPKI(t)
	srv := NewStoreFromMaterial(p.jm, p.roots1, Options{}, nil)
	for _, tc := range []struct{ send, want string }{
		{"hello there\n", "plaintext client on a TLS port (is security.ssl.internal.enabled set on the peer?)"},
		{"GET / HTTP/1.1\r\n\r\n", "plaintext HTTP client"},
	} {
		err := plaintextHandshake(t, srv.ServerConfig(PeerPolicy{}), tc.send)
		if got := Classify(err); !strings.Contains(got, tc.want) {
			t.Errorf("Classify(%v) = %q, want %q", err, got, tc.want)
		}
	}
}

func TestSharedCertificateNoteOnce(t *testing.T) {
	p := getPKI(t)
	log, buf := newLogger()
	srv := NewStoreFromMaterial(p.shared, p.roots1, Options{}, log)
	cli := NewStoreFromMaterial(p.shared, p.roots1, Options{}, nil)
	if _, ok := srv.Identity(); ok {
		t.Fatal("shared certificate has an identity")
	}
	for range 3 {
		res := handshake(t, srv.ServerConfig(PeerPolicy{Allow: []Role{RoleJobManager}}), cli.ClientConfig(PeerPolicy{}))
		if res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("server: %v; client: %v", res.serverErr, res.clientErr)
		}
	}
	if n := buf.count("certificates carry no identity: peer identities are not enforced"); n != 1 {
		t.Errorf("note logged %d times:\n%s", n, buf)
	}
}

func TestSetMaterialSwapsCertificate(t *testing.T) {
	p := getPKI(t)
	srv := NewStoreFromMaterial(p.jm, p.roots1, Options{}, nil)
	cli := NewStoreFromMaterial(p.tm, p.roots1, Options{}, nil)
	srvCfg, cliCfg := srv.ServerConfig(PeerPolicy{}), cli.ClientConfig(PeerPolicy{Allow: []Role{RoleJobManager}})

	res := handshake(t, srvCfg, cliCfg)
	if res.clientErr != nil || res.clientPeer.Subject.CommonName != "jm" || res.serverPeer.Subject.CommonName != "tm1" {
		t.Fatalf("first handshake: %+v", res)
	}
	if res = handshake(t, srvCfg, cliCfg); !res.resumed {
		t.Logf("second handshake did not resume (fine, but unexpected)")
	}

	srv.SetMaterial(p.jm2, p.roots1)
	cli.SetMaterial(p.tm2, p.roots1)
	res = handshake(t, srvCfg, cliCfg)
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("server: %v; client: %v", res.serverErr, res.clientErr)
	}
	if res.resumed || res.clientPeer.Subject.CommonName != "jm2" || res.serverPeer.Subject.CommonName != "tm2" {
		t.Errorf("after SetMaterial: resumed=%v client saw %s, server saw %s", res.resumed, res.clientPeer.Subject, res.serverPeer.Subject)
	}

	// New roots apply to the next handshake too.
	srv.SetMaterial(p.jm2, p.roots2)
	if res = handshake(t, srvCfg, cliCfg); reasonOf(res.serverErr) != UnknownCA {
		t.Errorf("after swapping roots: server err %v", res.serverErr)
	}
}
