package jobmanager

import (
	"context"
	"net/http"
	"strings"
)

// withAuthorization decides the endpoint's verb on its resource before
// the handler runs. "self" (whoami, can-i) is open to every authenticated
// caller: it only tells callers about themselves. Requests that match no
// endpoint pass on to the router's 404 or 405.
func (rs *restServer) withAuthorization(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r.Context())
		rt := info.Route
		if rt == nil || rt.resource == "self" {
			next.ServeHTTP(w, r)
			return
		}
		a := attributes(r, rt.verb, rt.resource)
		if strings.Contains(rt.resource, "{id}") {
			id := info.Values["id"]
			a.Resource = strings.Replace(rt.resource, "{id}", id, 1)
			a.Job = rs.jm.jobACL(id)
		}
		allowed, reason, _, err := rs.sec.authz.decide(r.Context(), a, true)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "authorization failed (request %s): %v", RequestID(r.Context()), err)
			return
		}
		if !allowed && !rt.filtered {
			writeError(w, http.StatusForbidden, "%s may not %s %s: %s", a.User, a.Verb, a.Resource, reason)
			return
		}
		if rt.filtered {
			r = r.WithContext(context.WithValue(r.Context(), listAllKey{}, allowed))
		}
		next.ServeHTTP(w, r)
	})
}
