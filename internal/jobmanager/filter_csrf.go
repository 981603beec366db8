package jobmanager

import (
	"crypto/subtle"
	"net/http"

	"github.com/sluice-dev/sluice/internal/security/authn"
)

// withCSRF requires, on every state-changing request that carries the
// dashboard's session cookie, the session's CSRF token in the X-CSRF-Token
// header. The cookie is SameSite=Strict and withOriginCheck refuses
// cross-site requests already; the token is the defence that holds when
// one of those does not (an old browser, a same-site page on a sibling
// host that is compromised). Only the dashboard's own script can read the
// token: it comes in the login answer and from GET /auth/info, which no
// other origin can read (there is no CORS).
func (rs *restServer) withCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := authn.SessionCookieOf(r)
		if safeMethod(r.Method) || id == "" || !rs.sec.loginOn[ListenerName(r.Context())] {
			next.ServeHTTP(w, r)
			return
		}
		// Authentication succeeded, and the session authenticator comes
		// first on this listener: the session is this request's identity.
		info, err := rs.sec.sessions.Lookup(id, ListenerName(r.Context()))
		got := r.Header.Get(authn.CSRFHeader)
		if err != nil || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(info.CSRFToken)) != 1 {
			writeError(w, http.StatusForbidden, "CSRF token missing or wrong: a state-changing request made with the dashboard's session cookie must carry the session's token in the %s header (the dashboard sends it; reload the page)", authn.CSRFHeader)
			return
		}
		next.ServeHTTP(w, r)
	})
}
