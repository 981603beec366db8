package authn

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// A certificate carrying a sluice process identity (JobManager or
// TaskManager) is refused unless a rule written for SPIFFE identities
// maps it; a user certificate from the same CA is not affected.
func TestX509RefusesProcessCertificates(t *testing.T) {
	ca := newTestCA(t)
	withURI := func(cn, uri string) *x509.Certificate {
		c := ca.issue(t, pkix.Name{CommonName: cn, Organization: []string{"sluice c1"}}, x509.ExtKeyUsageClientAuth)
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		if uri != "" {
			u, _ := url.Parse(uri)
			leaf.URIs = []*url.URL{u} // the authenticator reads the parsed leaf
		}
		return leaf
	}
	for _, tc := range []struct {
		name, rules, cn, uri string
		wantUser, wantErr    string
	}{
		{"jobmanager, CN default", "", "jobmanager", "spiffe://c1/jobmanager", "", `process identity spiffe://c1/jobmanager`},
		{"the refusal shows a rule that parses", "", "jobmanager", "spiffe://c1/jobmanager", "", `RULE:^spiffe:\/\/c1\/jobmanager$/<user>/`},
		{"taskmanager, CN default", "", "taskmanager/tm-1", "spiffe://c1/taskmanager/tm-1", "", "may not log in"},
		{"DEFAULT does not name it", "DEFAULT", "jobmanager", "spiffe://c1/jobmanager", "", RulesKey},
		{"a DN catch-all does not name it", `RULE:^CN=(.*?),.*$/$1/,RULE:(.*)/$1/`, "jobmanager", "spiffe://c1/jobmanager", "", "may not log in"},
		{"a SPIFFE rule names it", `RULE:^spiffe:\/\/c1\/jobmanager$/jm-ops/`, "jobmanager", "spiffe://c1/jobmanager", "jm-ops", ""},
		{"a SPIFFE rule for another identity", `RULE:^spiffe:\/\/c1\/jobmanager$/jm-ops/`, "taskmanager/tm-1", "spiffe://c1/taskmanager/tm-1", "", "may not log in"},
		{"user certificate", "", "alice", "", "alice", ""},
		{"user with a foreign SPIFFE id", "", "alice", "spiffe://example.org/ns/a/sa/alice", "alice", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParsePrincipalRules(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{withURI(tc.cn, tc.uri)}}
			u, ok, err := NewX509(m).AuthenticateRequest(r)
			if tc.wantErr != "" {
				if ok || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ok=%v user=%+v err=%v, want refusal containing %q", ok, u, err, tc.wantErr)
				}
				return
			}
			if !ok || err != nil || u.Name != tc.wantUser {
				t.Fatalf("ok=%v user=%+v err=%v, want %s", ok, u, err, tc.wantUser)
			}
		})
	}
}
