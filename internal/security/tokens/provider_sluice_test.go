package tokens

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/security/authz"
)

func TestRESTTokens(t *testing.T) {
	p := NewRESTTokens(time.Hour)
	ts, _, err := p.Obtain(context.Background(), Job{ID: "j1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := func(h string) (string, bool, error) {
		r := httptest.NewRequest("GET", "/jobs/j1", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		u, ok, err := p.AuthenticateRequest(r)
		return u.Name, ok, err
	}
	if u, ok, err := req("Bearer " + ts[0].Secret); !ok || err != nil || u != "system:job:j1" {
		t.Fatalf("a job token: %q %v %v", u, ok, err)
	}
	if _, ok, err := req("Bearer some-token-file-token"); ok || err != nil {
		t.Fatalf("another bearer token must be left to the chain: %v %v", ok, err)
	}
	if _, ok, err := req("Bearer " + RESTTokenPrefix + "forged"); ok || err == nil {
		t.Fatalf("a forged job token: %v %v", ok, err)
	}
	p.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, ok, err := req("Bearer " + ts[0].Secret); ok || err == nil {
		t.Fatalf("an expired job token: %v %v", ok, err)
	}
	p.now = time.Now
	if err := p.Release(context.Background(), Job{ID: "j1"}, ts); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := req("Bearer " + ts[0].Secret); ok {
		t.Fatal("a released job token still authenticates")
	}
}

func TestJobTokenAuthorizer(t *testing.T) {
	a := JobTokenAuthorizer()
	for _, tc := range []struct {
		method, user, verb, resource string
		want                         authz.Decision
	}{
		{MethodJobToken, "system:job:j1", authz.VerbView, "job/j1", authz.Allow},
		{MethodJobToken, "system:job:j1", authz.VerbView, "job/j2", authz.Deny},
		{MethodJobToken, "system:job:j1", authz.VerbCancel, "job/j1", authz.Deny},
		{MethodJobToken, "system:job:j1", authz.VerbList, "jobs", authz.Deny},
		{MethodJobToken, "system:job:j1", authz.VerbSubmit, "jobs", authz.Deny},
		{MethodJobToken, "system:job:j1", authz.VerbView, "config", authz.Deny},
		{"token", "system:job:j1", authz.VerbView, "job/j2", authz.NoOpinion},
	} {
		d, reason, err := a.Authorize(context.Background(), authz.Attributes{Method: tc.method, User: tc.user, Verb: tc.verb, Resource: tc.resource})
		if err != nil || d != tc.want {
			t.Errorf("%+v: %v (%s) %v", tc, d, reason, err)
		}
	}
}
