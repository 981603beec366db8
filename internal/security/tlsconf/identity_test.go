package tlsconf

import (
	"crypto/x509"
	"net/url"
	"testing"
)

func TestIdentityOf(t *testing.T) {
	u := func(s ...string) []*url.URL {
		var out []*url.URL
		for _, x := range s {
			p, err := url.Parse(x)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		uris    []*url.URL
		want    Identity
		ok, err bool
	}{
		{uris: nil},
		{uris: u("https://example.com/x")},
		{uris: u("spiffe://c1/jobmanager"), want: Identity{"c1", RoleJobManager, ""}, ok: true},
		{uris: u("https://x", "spiffe://prod-1/taskmanager/tm-7"), want: Identity{"prod-1", RoleTaskManager, "tm-7"}, ok: true},
		{uris: u("spiffe://c1/taskmanager"), want: Identity{"c1", RoleTaskManager, ""}, ok: true},
		{uris: u("spiffe://c1/taskmanager/"), err: true},
		{uris: u("spiffe://c1/jobmanager/x"), err: true},
		{uris: u("spiffe://c1/admin"), err: true},
		{uris: u("spiffe://C1!/jobmanager"), err: true},
		{uris: u("spiffe://c1/jobmanager", "spiffe://c1/taskmanager/a"), err: true},
	}
	for _, tt := range tests {
		id, ok, err := IdentityOf(&x509.Certificate{URIs: tt.uris})
		if id != tt.want || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("%v: %v %v %v", tt.uris, id, ok, err)
		}
		if ok {
			if got := id.String(); got != tt.uris[len(tt.uris)-1].String() {
				t.Errorf("String() = %s", got)
			}
		}
	}
}
