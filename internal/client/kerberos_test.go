package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/test/kdc"
)

func TestCCachePath(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "KRB5CCNAME" {
				return v
			}
			return ""
		}
	}
	for in, want := range map[string]string{"FILE:/tmp/cc": "/tmp/cc", "/tmp/cc": "/tmp/cc", "file:/x": "/x"} {
		if got, err := CCachePath(env(in)); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	if got, _ := CCachePath(env("")); !strings.HasPrefix(got, "/tmp/krb5cc_") {
		t.Errorf("default %q", got)
	}
	for _, in := range []string{"KCM:1000", "KEYRING:persistent:1000"} {
		if _, err := CCachePath(env(in)); err == nil || !strings.Contains(err.Error(), "only FILE:") {
			t.Errorf("%s: %v", in, err)
		}
	}
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
