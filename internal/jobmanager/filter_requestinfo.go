package jobmanager

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// requestInfo is what the first filter learns about a request, for the
// filters after it (Kubernetes' RequestInfo): its id, listener, client
// address, the prefix clients reach the API under, and the endpoint.
type requestInfo struct {
	ID         string
	Listener   string
	ClientAddr string
	// Prefix is rest.base-path, after X-Forwarded-Prefix from a trusted
	// proxy: links and redirects must carry it.
	Prefix string
	// Route is the endpoint; nil when there is none (the router answers
	// 404 or 405 to an authenticated caller).
	Route *route
	// Values are the route's path wildcards ({id}).
	Values map[string]string
	// OriginalPath is the path as the client sent it, before rest.base-path
	// was taken off.
	OriginalPath string
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	if i == nil {
		return &requestInfo{}
	}
	return i
}

// RequestID returns the id the REST chain gave this request.
func RequestID(ctx context.Context) string { return infoFrom(ctx).ID }

// ListenerName returns the name of the REST listener a request came in on.
func ListenerName(ctx context.Context) string { return infoFrom(ctx).Listener }

// ExternalPrefix is the path prefix under which clients reach the API
// (rest.base-path, or X-Forwarded-Prefix from a trusted proxy), for links.
func ExternalPrefix(ctx context.Context) string { return infoFrom(ctx).Prefix }

// withRequestInfo tags each request with an id (echoed in X-Request-Id)
// and its listener; redirects a non-canonical path (//jobs, /x/../jobs)
// to its canonical form under the external prefix; serves the API under
// rest.base-path, believing X-Forwarded-Prefix only from trusted proxies;
// serves every endpoint under /v1 as well (Flink's REST client prefixes
// it); and resolves the endpoint.
func (rs *restServer) withRequestInfo(l Listener) filter {
	sec := rs.sec
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := &requestInfo{ID: newID(8), Listener: l.Name, ClientAddr: sec.clientAddr(r)}
			w.Header().Set("X-Request-Id", info.ID)
			r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
			forwarded := ""
			if fp := r.Header.Get("X-Forwarded-Prefix"); fp != "" && sec.trusted(r) && strings.HasPrefix(fp, "/") {
				forwarded = strings.TrimRight(fp, "/")
			}
			if clean := canonicalPath(r.URL.Path); clean != r.URL.Path {
				// What Go's ServeMux would do, but it sees the path without
				// the prefixes, so its redirect would leave them out.
				u := url.URL{Path: forwarded + clean, RawQuery: r.URL.RawQuery}
				code := http.StatusMovedPermanently
				if r.Method != http.MethodGet && r.Method != http.MethodHead {
					code = http.StatusPermanentRedirect // keeps the method and body
				}
				http.Redirect(w, r, u.String(), code)
				return
			}
			info.Prefix = forwarded
			info.OriginalPath = r.URL.Path
			if base := sec.basePath; base != "" {
				if r.URL.Path != base && !strings.HasPrefix(r.URL.Path, base+"/") {
					writeError(w, http.StatusNotFound, "this API is served under %s (rest.base-path)", base)
					return
				}
				r2 := r.Clone(r.Context())
				r2.URL.Path = strings.TrimPrefix(r.URL.Path, base)
				if r2.URL.Path == "" {
					r2.URL.Path = "/"
				}
				r2.URL.RawPath = ""
				r = r2
				info.Prefix += base
			}
			if p, ok := unversioned(r.URL.Path); ok {
				r2 := r.Clone(r.Context())
				r2.URL.Path, r2.URL.RawPath = p, ""
				r = r2
			}
			info.Route, info.Values = rs.resolve(r)
			next.ServeHTTP(w, r)
		})
	}
}

// apiVersion is the version prefix Flink's REST client puts before every
// path: each endpoint is served under it too, with the same authorization.
const apiVersion = "/v1"

// unversioned strips the API version prefix from p, reporting whether it had one.
func unversioned(p string) (string, bool) {
	if rest, ok := strings.CutPrefix(p, apiVersion); ok && strings.HasPrefix(rest, "/") {
		return rest, true
	}
	return p, false
}

// canonicalPath is path.Clean keeping a trailing slash, as ServeMux
// cleans paths.
func canonicalPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// resolve finds the endpoint of r and its path wildcards.
func (rs *restServer) resolve(r *http.Request) (*route, map[string]string) {
	_, pattern := rs.mux.Handler(r)
	rt, ok := rs.byPattern[pattern]
	if !ok {
		return nil, nil
	}
	_, pat, _ := strings.Cut(pattern, " ")
	values := map[string]string{}
	ps, segs := strings.Split(pat, "/"), strings.Split(r.URL.Path, "/")
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && i < len(segs) {
			values[strings.Trim(p, "{}")] = segs[i]
		}
	}
	return rt, values
}
