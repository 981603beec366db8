package authn

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/sluice-dev/sluice/test/kdc"
)

// TestKerberosSPNEGO runs SPNEGO against a real MIT KDC: tickets come
// from krb5kdc, and only the verification is ours.
func TestKerberosSPNEGO(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	alicePW := k.AddPrincipal(t, "alice")
	k.AddPrincipal(t, "HTTP/localhost")
	k.AddPrincipal(t, "HTTP/other")
	ktPath := k.Keytab(t, "HTTP/localhost")

	a, err := NewKerberos(KerberosOptions{Keytab: ktPath, Principal: "HTTP/localhost@" + k.Realm})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(Filter(FilterOptions{Listener: "external", Chain: Union{a}})(echoUser))
	t.Cleanup(srv.Close)

	conf, err := krbconfig.Load(k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := krbclient.NewWithPassword("alice", k.Realm, alicePW, conf, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatal(err)
	}
	defer cl.Destroy()

	request := func(t *testing.T, spn, auth string) response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/whoami", nil)
		if spn != "" {
			if err := spnego.SetSPNEGOHeader(cl, req, spn); err != nil {
				t.Fatal(err)
			}
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return do(t, srv.Client(), req)
	}

	t.Run("ticket maps to the user", func(t *testing.T) {
		r := request(t, "HTTP/localhost", "")
		if r.status != 200 || r.user.Name != "alice" || r.user.Method != MethodKerberos || len(r.user.Groups) != 0 {
			t.Fatalf("got %d %+v %v", r.status, r.user, r.errors)
		}
	})
	tests := []struct {
		name, spn, auth, wantErr string
	}{
		{"no header", "", "", "authentication required: this listener accepts: kerberos"},
		{"ticket for another service", "HTTP/other", "", "the Kerberos ticket is for HTTP/other@" + k.Realm + ", not for this server"},
		{"not base64", "", "Negotiate !!!", "not base64"},
		{"empty token", "", "Negotiate ", "empty Negotiate token"},
		{"garbage token", "", "Negotiate aGVsbG8=", "carries no Kerberos AP-REQ"},
		{"other scheme is no credential", "", "Bearer x", "authentication required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, tc.spn, tc.auth)
			if r.status != 401 {
				t.Fatalf("status %d, want 401 (%+v)", r.status, r.user)
			}
			if len(r.challenge) != 1 || r.challenge[0] != "Negotiate" {
				t.Errorf("WWW-Authenticate %q, want Negotiate", r.challenge)
			}
			if len(r.errors) != 1 || !strings.Contains(r.errors[0], tc.wantErr) {
				t.Errorf("errors %q, want %q", r.errors, tc.wantErr)
			}
		})
	}

	t.Run("ticket encrypted with a stale key", func(t *testing.T) {
		// The server's key changes after the keytab was exported: the
		// ticket names this server but cannot be decrypted with its keytab.
		k.AddPrincipal(t, "HTTP/stale")
		stale := k.Keytab(t, "HTTP/stale")
		k.Randkey(t, "HTTP/stale")
		s, err := NewKerberos(KerberosOptions{Keytab: stale, Principal: "HTTP/stale@" + k.Realm})
		if err != nil {
			t.Fatal(err)
		}
		h := Filter(FilterOptions{Chain: Union{s}})(echoUser)
		req := httptest.NewRequest("GET", "/", nil)
		if err := spnego.SetSPNEGOHeader(cl, req, "HTTP/stale"); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 401 || !strings.Contains(w.Body.String(), "invalid Kerberos ticket") {
			t.Fatalf("got %d %s", w.Code, w.Body)
		}
	})
}

func TestNewKerberosErrors(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	k.AddPrincipal(t, "HTTP/localhost")
	k.AddPrincipal(t, "HTTP/other")
	kt := k.Keytab(t, "HTTP/localhost")
	loose := k.Keytab(t, "HTTP/localhost")
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		o       KerberosOptions
		wantErr string
	}{
		{"no keytab", KerberosOptions{Principal: "HTTP/localhost"}, KerberosKeytabKey},
		{"no principal", KerberosOptions{Keytab: kt}, KerberosPrincipalKey},
		{"not a service principal", KerberosOptions{Keytab: kt, Principal: "alice@" + k.Realm}, "want a service principal"},
		{"principal not in keytab", KerberosOptions{Keytab: kt, Principal: "HTTP/other@" + k.Realm}, "holds no key for HTTP/other@"},
		{"loose keytab", KerberosOptions{Keytab: loose, Principal: "HTTP/localhost@" + k.Realm}, KerberosKeytabKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKerberos(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, err := NewKerberos(KerberosOptions{Keytab: loose, Principal: "HTTP/localhost@" + k.Realm, AllowInsecureKeytab: true}); err != nil {
		t.Errorf("allow-insecure-keytab: %v", err)
	}
}
