package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/test/kdc"
)

// TestTicketCacheResolvedAsServer: the CLI's --kerberos, the login
// service of the processes and `sluice security check` read the same
// ticket cache: default_ccache_name from krb5.conf when KRB5CCNAME is
// unset, DIR: collections (primary file, or DIR::file), and the same clear
// error for cache types gokrb5 cannot read.
func TestTicketCacheResolvedAsServer(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	pw := k.AddPrincipal(t, "alice")
	t.Setenv("KRB5_CONFIG", k.Krb5Conf)
	coll := t.TempDir()
	tests := []struct {
		name, ccname, file string
		prepare            func(t *testing.T)
	}{
		// The test KDC's krb5.conf sets default_ccache_name to this file.
		{name: "default_ccache_name", ccname: "", file: filepath.Join(k.Dir, "default.ccache")},
		{name: "DIR collection primary", ccname: "DIR:" + coll, file: filepath.Join(coll, "tkt-alice"),
			prepare: func(t *testing.T) { os.WriteFile(filepath.Join(coll, "primary"), []byte("tkt-alice\n"), 0o600) }},
		{name: "DIR one file", ccname: "DIR::" + filepath.Join(coll, "tkt-other"), file: filepath.Join(coll, "tkt-other")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KRB5CCNAME", tc.ccname)
			if tc.prepare != nil {
				tc.prepare(t)
			}
			k.Kinit(t, "alice", pw, tc.file)

			a, err := newKerberosAuth("HTTP/127.0.0.1", os.Getenv, time.Now())
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			if a.ccache != tc.file {
				t.Errorf("client reads %s, want %s", a.ccache, tc.file)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l, err := kerberos.NewLogin(ctx, kerberos.Config{UseTicketCache: true, Contexts: []string{"KafkaClient"}}, nil)
			if err != nil {
				t.Fatalf("login service: %v", err)
			}
			if got := l.Status().TicketCache; got != tc.file {
				t.Errorf("login service reads %s, want %s", got, tc.file)
			}
			cfg := config.New()
			cfg.Set(kerberos.KeyPrincipal, "alice@"+k.Realm)
			cfg.Set(kerberos.KeyUseTicketCache, "true")
			var out strings.Builder
			kerberos.Diagnose(ctx, cfg, os.Getenv, time.Now()).Print(&out)
			if !strings.Contains(out.String(), "the TGT in "+tc.file+" ") {
				t.Errorf("security check does not report %s:\n%s", tc.file, out.String())
			}
		})
	}
	t.Run("KCM", func(t *testing.T) {
		t.Setenv("KRB5CCNAME", "KCM:1000")
		_, err := newKerberosAuth("HTTP/127.0.0.1", os.Getenv, time.Now())
		if err == nil || !strings.Contains(err.Error(), "only FILE: caches are supported") || !strings.Contains(err.Error(), "KRB5CCNAME=FILE:") {
			t.Fatalf("%v", err)
		}
	})
}

// TestKerberosClient: the Negotiate header goes with the first request,
// and each usual failure says what to do.
func TestKerberosClient(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	pw := k.AddPrincipal(t, "alice")
	k.AddPrincipal(t, "HTTP/127.0.0.1")
	cc := filepath.Join(t.TempDir(), "cc")
	k.Kinit(t, "alice", pw, cc)
	t.Setenv("KRB5_CONFIG", k.Krb5Conf)
	t.Setenv("KRB5CCNAME", "FILE:"+cc)

	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests = append(requests, r.Header.Get("Authorization"))
		json.NewEncoder(w).Encode(map[string]string{"username": "alice"})
	}))
	defer srv.Close()
	ctx := context.Background()

	c, err := NewWithOptions(Options{URL: srv.URL, Kerberos: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(ctx); err != nil {
		t.Fatal(err)
	}
	if len(requests) != 1 || !strings.HasPrefix(requests[0], "Negotiate ") {
		t.Fatalf("requests %q: want one, with Negotiate", requests)
	}

	t.Run("unknown service principal", func(t *testing.T) {
		c, err := NewWithOptions(Options{URL: srv.URL, Kerberos: true, KerberosSPN: "HTTP/nowhere"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WhoAmI(ctx)
		if err == nil || !strings.Contains(err.Error(), "the KDC does not know the service principal HTTP/nowhere") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("no ticket cache", func(t *testing.T) {
		t.Setenv("KRB5CCNAME", filepath.Join(t.TempDir(), "none"))
		_, err := NewWithOptions(Options{URL: srv.URL, Kerberos: true})
		if err == nil || !strings.Contains(err.Error(), "run kinit") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("expired ticket", func(t *testing.T) {
		_, err := newKerberosAuth("HTTP/127.0.0.1", func(name string) string {
			return map[string]string{"KRB5CCNAME": cc, "KRB5_CONFIG": k.Krb5Conf}[name]
		}, time.Now().Add(48*time.Hour))
		if err == nil || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), "run kinit alice@") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("token and kerberos", func(t *testing.T) {
		_, err := NewWithOptions(Options{URL: srv.URL, Kerberos: true, Token: "sluice_x"})
		if err == nil || !strings.Contains(err.Error(), "exclusive") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("plaintext to another host", func(t *testing.T) {
		_, err := NewWithOptions(Options{URL: "http://jm.example.com:8081", Kerberos: true})
		if err == nil || !strings.Contains(err.Error(), "use https") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("KDC unreachable", func(t *testing.T) {
		c, err := NewWithOptions(Options{URL: srv.URL, Kerberos: true, KerberosSPN: "HTTP/other"})
		if err != nil {
			t.Fatal(err)
		}
		k.Stop()
		_, err = c.WhoAmI(ctx)
		if err == nil || !strings.Contains(err.Error(), "cannot reach the KDC of realm "+k.Realm) {
			t.Fatalf("%v", err)
		}
	})
}
