package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FilterOptions configures Filter for one listener.
type FilterOptions struct {
	Listener string // listener name, for the log
	Chain    Union
	Limiter  *FailureLimiter // nil: no limit
	Log      *slog.Logger    // nil: slog.Default()
	// RemoteAddr returns the client address the limiter counts and the log
	// shows, after trusted-proxy handling. Default: the host of
	// r.RemoteAddr (the port changes with every connection).
	RemoteAddr func(*http.Request) string
}

// Filter authenticates each request with the listener's chain and puts
// the User in its context (see UserFrom) before calling the next handler.
//
// A request without a credential, on a listener without anonymous, gets
// 401 with one WWW-Authenticate header per offered method; one with an
// invalid credential gets 401 too, even where anonymous is allowed (see
// Union). An address over its failure limit gets 429 with Retry-After.
// Failures are logged at Info with the listener, address, method and
// reason, never the credential.
//
// The Authorization header is removed once the request is authenticated,
// as Kubernetes does, so no handler can log or forward it by mistake.
func Filter(o FilterOptions) func(http.Handler) http.Handler {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	remote := o.RemoteAddr
	if remote == nil {
		remote = remoteHost
	}
	methods := strings.Join(o.Chain.Methods(), ", ")
	challenges := o.Chain.Challenges()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addr := remote(r)
			if wait := o.Limiter.Blocked(addr); wait > 0 {
				secs := int(math.Ceil(wait.Seconds()))
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				writeErrors(w, http.StatusTooManyRequests,
					fmt.Sprintf("too many failed authentications from %s; retry in %ds", addr, secs))
				return
			}
			u, ok, err := o.Chain.AuthenticateRequest(r)
			switch {
			case err != nil:
				method := ""
				var me *methodError
				if errors.As(err, &me) {
					method = me.method
				}
				log.Info("authentication failed", "listener", o.Listener, "remote", addr, "method", method, "reason", err.Error())
				if o.Limiter.Fail(addr) {
					log.Info("client address blocked after too many failed authentications",
						"listener", o.Listener, "remote", addr, "for", o.Limiter.Blocked(addr).Round(time.Second).String())
				}
				unauthorized(w, challenges, "authentication failed: "+err.Error())
			case !ok:
				log.Debug("no credential", "listener", o.Listener, "remote", addr)
				unauthorized(w, challenges, "authentication required: this listener accepts: "+methods)
			default:
				r.Header.Del("Authorization")
				next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
			}
		})
	}
}

func unauthorized(w http.ResponseWriter, challenges []string, msg string) {
	for _, c := range challenges {
		w.Header().Add("WWW-Authenticate", c)
	}
	writeErrors(w, http.StatusUnauthorized, msg)
}

// writeErrors writes the REST API's error body, {"errors": [...]}.
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []string `json:"errors"`
	}{msgs})
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
