package ca

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveTLS runs a TLS server on loopback presenting cert, completing
// handshakes until the test ends. It returns the address.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		// A joining TaskManager has no certificate yet.
		ClientAuth: tls.NoClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				_ = conn.(*tls.Conn).Handshake()
			})
		}
	})
	return ln.Addr().String()
}

func dial(cfg *tls.Config, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

func TestBootstrapClientConfig(t *testing.T) {
	cluster := newTestCA(t, "c1")
	// The attacker runs its own CA, even with the same cluster id.
	attacker := newTestCA(t, "c1")

	tokens := NewTokens(cluster)
	good, err := tokens.Create(time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	otherCAToken, err := NewTokens(attacker).Create(time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}

	jm, err := cluster.IssueKeyPair(RoleJobManager, "", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := cluster.IssueKeyPair(RoleTaskManager, "tm-1", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fakeJM, err := attacker.IssueKeyPair(RoleJobManager, "", []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A man in the middle that forwards the real CA certificate but can
	// only sign its leaf with its own key.
	mitm := fakeJM
	mitm.Certificate = [][]byte{fakeJM.Certificate[0], cluster.Cert.Raw}
	leafOnly := jm
	leafOnly.Certificate = jm.Certificate[:1]

	tests := []struct {
		name    string
		server  tls.Certificate
		token   Token
		wantErr string
	}{
		{"jobmanager, right token", jm, good, ""},
		{"token of another CA", jm, otherCAToken, "the CA does not match the join token"},
		{"attacker's CA and leaf", fakeJM, good, "the CA does not match the join token"},
		{"real CA, attacker's leaf", mitm, good, "does not verify against the cluster CA"},
		{"taskmanager posing as jobmanager", tm, good, "not the JobManager"},
		{"no CA in chain", leafOnly, good, "no CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveTLS(t, tt.server)
			cfg, verifiedCA := BootstrapClientConfig(tt.token)
			if cfg.MinVersion != tls.VersionTLS13 {
				t.Errorf("MinVersion = %x, want TLS 1.3", cfg.MinVersion)
			}
			err := dial(cfg, addr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ca := verifiedCA(); ca == nil || !ca.Equal(cluster.Cert) {
					t.Fatal("verified CA is not the cluster CA")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			noSecret(t, err, tt.token.Secret)
			if verifiedCA() != nil {
				t.Error("a CA was reported verified after a failed handshake")
			}
		})
	}
}
