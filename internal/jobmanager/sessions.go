package jobmanager

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/security/audit"
	"github.com/sluice-dev/sluice/internal/security/authn"
)

// loginOffered reports whether the dashboard offers its token login on l,
// and if not, why (shown on the login page). A session cookie is a bearer
// credential: over plaintext HTTP anyone on the path could take it, and
// browsers keep __Host- cookies to secure origins.
func loginOffered(l Listener) (bool, string) {
	switch {
	case !l.TLS:
		return false, "this listener (" + l.Name + ") is plaintext HTTP: a token typed here, and the session cookie it would buy, would cross the network unencrypted. Log in on a listener with tls: true"
	case !slices.Contains(l.Authentication, authn.MethodToken):
		return false, "this listener (" + l.Name + ") does not accept bearer tokens (its authentication: " + strings.Join(l.Authentication, ", ") + ")"
	}
	return true, ""
}

// optionalAuthn reports whether the route may be called without any
// credential (authn.FilterOptions.Optional): GET /auth/info, which the
// dashboard asks first to learn whether to show its login.
func (rt *route) optionalAuthn() bool {
	if rt == nil {
		return false
	}
	method, p, _ := strings.Cut(rt.pattern, " ")
	return method == http.MethodGet && strings.TrimPrefix(p, "/v1") == "/auth/info"
}

func (rs *restServer) listener(name string) Listener {
	for _, l := range rs.jm.listeners {
		if l.Name == name {
			return l
		}
	}
	return Listener{Name: name}
}

// authInfo is GET /auth/info: how this listener lets a browser in, and who
// the caller is, if anyone (200 either way, so the dashboard's first
// request never fails). With a session it returns the CSRF token.
func (rs *restServer) authInfo(w http.ResponseWriter, r *http.Request) {
	l := rs.listener(ListenerName(r.Context()))
	offered, why := loginOffered(l)
	out := map[string]any{
		"listener": l.Name, "tls": l.TLS, "methods": nonNil(l.Authentication),
		"login": offered, "base-path": ExternalPrefix(r.Context()),
	}
	if !offered {
		out["login-unavailable-reason"] = why
	}
	u, ok := authn.UserFrom(r.Context())
	out["authenticated"] = ok
	if ok {
		out["user"] = map[string]any{"username": u.Name, "groups": nonNil(u.Groups), "method": u.Method}
		if id := authn.SessionCookieOf(r); id != "" && offered {
			if s, err := rs.sec.sessions.Lookup(id, l.Name); err == nil {
				out["session"] = map[string]any{"csrf-token": s.CSRFToken, "expires": s.Expires.UnixMilli(), "idle-timeout": s.IdleTimeout}
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// login is POST /auth/login: the request authenticated with a bearer token
// (the Authorization header, checked by the listener's chain like any
// request) gets a session instead, in a __Host- cookie the page's script
// cannot read. The token is not kept: only its SHA-256, to end the session
// when the token is revoked.
func (rs *restServer) login(w http.ResponseWriter, r *http.Request) {
	l := rs.listener(ListenerName(r.Context()))
	if ok, why := loginOffered(l); !ok {
		writeError(w, http.StatusForbidden, "no login here: %s", why)
		return
	}
	u, _ := authn.UserFrom(r.Context())
	digest, fromToken := authn.BearerDigest(r.Context())
	switch {
	case u.Method == authn.MethodAnonymous:
		writeError(w, http.StatusBadRequest, "no bearer token: send it in the Authorization header (Bearer <token>); `sluice token create` makes one")
		return
	case u.Method != authn.MethodToken || !fromToken:
		writeError(w, http.StatusBadRequest, "log in with a bearer token (Authorization: Bearer <token>); you are authenticated by %s already, which needs no login", u.Method)
		return
	}
	if old := authn.SessionCookieOf(r); old != "" {
		rs.sec.sessions.Delete(old) // a new login never keeps the old id (session fixation)
	}
	id, s, err := rs.sec.sessions.Create(u, l.Name, digest)
	if errors.Is(err, authn.ErrSessionsFull) {
		writeError(w, http.StatusTooManyRequests, "%v", err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "create session: %v", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: authn.SessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: s.Expires,
	})
	rs.auditSession(r, u, "login", "session created")
	writeJSON(w, http.StatusOK, map[string]any{
		"user":       map[string]any{"username": u.Name, "groups": nonNil(u.Groups), "method": u.Method},
		"csrf-token": s.CSRFToken, "expires": s.Expires.UnixMilli(), "idle-timeout": s.IdleTimeout,
	})
}

// logout is POST /auth/logout: the session ends on the server and the
// browser is told to drop the cookie.
func (rs *restServer) logout(w http.ResponseWriter, r *http.Request) {
	if id := authn.SessionCookieOf(r); id != "" {
		rs.sec.sessions.Delete(id)
		u, _ := authn.UserFrom(r.Context())
		rs.auditSession(r, u, "logout", "session ended")
	}
	http.SetCookie(w, &http.Cookie{
		Name: authn.SessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1,
	})
	writeJSON(w, http.StatusOK, map[string]any{})
}

// auditSession writes a login or logout to the audit log (at level all:
// it is an allowed action). It carries the user, never the token or the
// session id.
func (rs *restServer) auditSession(r *http.Request, u authn.User, verb, reason string) {
	l := rs.sec.audit
	if !l.Enabled("allow") {
		return
	}
	l.Log(audit.Event{
		Time: time.Now().UTC(), RequestID: RequestID(r.Context()), Stage: audit.StageSession,
		User: u.Name, Groups: u.Groups, Method: u.Method, Verb: verb, Resource: "self",
		Decision: "allow", Reason: reason, Listener: ListenerName(r.Context()), RemoteAddr: infoFrom(r.Context()).ClientAddr,
	})
}
