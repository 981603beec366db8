package authn

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestFilterOptional: a request the Optional func names goes on without a
// credential and without a user (not as anonymous); an invalid credential
// is still a 401; a token's SHA-256 is handed on for a login, never the
// token.
func TestFilterOptional(t *testing.T) {
	tf := newTokens(t, hashLine("sluice_good", `,alice,`))
	var sawUser bool
	var digest *[32]byte
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, sawUser = UserFrom(r.Context())
		digest, _ = BearerDigest(r.Context())
		if r.Header.Get("Authorization") != "" {
			t.Error("the Authorization header reached the handler")
		}
	})
	h := Filter(FilterOptions{Listener: "web", Chain: Union{tf}, Optional: func(r *http.Request) bool { return r.URL.Path == "/auth/info" }})(next)
	serve := func(path, auth string) int {
		req := httptest.NewRequest("GET", path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := serve("/auth/info", ""); code != 200 || sawUser {
		t.Errorf("optional without a credential: %d, user %v", code, sawUser)
	}
	if code := serve("/overview", ""); code != 401 {
		t.Errorf("not optional without a credential: %d", code)
	}
	if code := serve("/auth/info", "Bearer sluice_bad"); code != 401 {
		t.Errorf("optional with an invalid token: %d", code)
	}
	if code := serve("/auth/login", "Bearer sluice_good"); code != 200 || !sawUser || digest == nil || *digest != sha256.Sum256([]byte("sluice_good")) {
		t.Errorf("token: %d user %v digest %v", code, sawUser, digest)
	}
}
