package jobmanager

import (
	"net/http"
	"net/url"
	"strings"
)

// safeMethod reports whether a request method only reads (RFC 9110): the
// ones a cross-site page may make a browser send freely.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// withOriginCheck refuses a state-changing request that a browser sent
// from a page of another origin, before authentication: a browser attaches
// its client certificate, its Kerberos ticket (SPNEGO) and, on a same-site
// request, its session cookie by itself, so a cross-site form post would
// act as the user. Browsers say where a request comes from in
// Sec-Fetch-Site (same-origin, same-site, cross-site, none); where that is
// missing (older browsers) the Origin header is compared with the host the
// request was sent to. Non-browser clients (the CLI, curl, Flink's tools)
// send neither and pass. A GET never changes state, so it is not checked:
// links into the dashboard keep working.
func withOriginCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
			if site != "same-origin" && site != "none" {
				writeError(w, http.StatusForbidden, "cross-site request refused: %s %s came from a page of another site (Sec-Fetch-Site: %s); use the dashboard or the API directly", r.Method, r.URL.Path, site)
				return
			}
		} else if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
			writeError(w, http.StatusForbidden, "cross-origin request refused: %s %s came from %s, not from this server; use the dashboard or the API directly", r.Method, r.URL.Path, origin)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether origin (scheme://host[:port]) names the host
// the request was sent to. Behind a reverse proxy the Host header is the
// proxy's upstream name: only browsers without Sec-Fetch-Site get here,
// and for them the proxy must pass the Host it was sent
// (proxy_set_header Host $http_host).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (sandboxed frames, file:) included
	}
	return strings.EqualFold(u.Host, r.Host)
}
