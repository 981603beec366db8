package authn

import (
	"context"
	"crypto/sha256"
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
	Listener string // listener name, for the log and the limiter
	Chain    Union
	Limiter  *FailureLimiter // nil: no limit
	Log      *slog.Logger    // nil: slog.Default()
	// RemoteAddr returns the client address the limiter counts and the log
	// shows, after trusted-proxy handling. Default: the host of
	// r.RemoteAddr (the port changes with every connection).
	RemoteAddr func(*http.Request) string
	// OnFailure, when set, is told about every failed authentication
	// (the audit log).
	OnFailure func(r *http.Request, f Failure)
	// Optional, when set, names requests that may go on without any
	// credential and without becoming anonymous: the handler sees no User
	// (the dashboard's GET /auth/info, which tells a browser whether it
	// is logged in without a 401 in its console). An invalid credential
	// is still a 401.
	Optional func(*http.Request) bool
}

// Failure describes one failed authentication. It has no field for the
// credential, so none can reach a log or an audit event through it.
type Failure struct {
	Listener   string
	RemoteAddr string
	// Method is the method that rejected the credential (token, x509,
	// kerberos).
	Method string
	Reason string
	// Limited is set when the failure was answered 429: its client
	// address prefix is over the failure limit.
	Limited bool
}

// Filter authenticates each request with the listener's chain and puts
// the User in its context (see UserFrom) before calling the next handler.
//
// A request without a credential, on a listener without anonymous, gets
// 401 with one WWW-Authenticate header per offered method; one with an
// invalid credential gets 401 too, even where anonymous is allowed (see
// Union). The limiter is asked only about failures: a request with a valid
// credential always gets in, and a failure from a client address prefix
// over its limit gets 429 with Retry-After instead of 401. Failures are
// logged at Info with the listener, address, method and reason, never the
// credential, and handed to OnFailure.
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
			u, ok, err := o.Chain.AuthenticateRequest(r)
			switch {
			case ok:
				ctx := WithUser(r.Context(), u)
				if u.Method == MethodToken {
					if tok, present, _ := bearerToken(r); present {
						sum := sha256.Sum256([]byte(tok))
						ctx = context.WithValue(ctx, bearerDigestKey{}, &sum)
					}
				}
				r.Header.Del("Authorization")
				next.ServeHTTP(w, r.WithContext(ctx))
			case err != nil:
				addr := remote(r)
				f := Failure{Listener: o.Listener, RemoteAddr: addr, Reason: err.Error()}
				var me *methodError
				if errors.As(err, &me) {
					f.Method = me.method
				}
				wait := o.Limiter.Fail(o.Listener, addr)
				f.Limited = wait > 0
				if o.OnFailure != nil {
					o.OnFailure(r, f)
				}
				if f.Limited {
					// Not logged one by one: a blocked client is what
					// floods, and the audit log and metrics count it.
					secs := int(math.Ceil(wait.Seconds()))
					w.Header().Set("Retry-After", strconv.Itoa(secs))
					writeErrors(w, http.StatusTooManyRequests,
						fmt.Sprintf("too many failed authentications from %s; retry in %ds (a valid credential is accepted at any time)", addr, secs))
					return
				}
				log.Info("authentication failed", "listener", o.Listener, "peer", addr, "method", f.Method, "reason", f.Reason)
				if wait := o.Limiter.Blocked(o.Listener, addr); wait > 0 {
					log.Info("client address prefix limited after too many failed authentications",
						"listener", o.Listener, "peer", addr, "prefix", o.Limiter.Prefix(addr), "for", wait.Round(time.Second).String())
				}
				unauthorized(w, challenges, "authentication failed: "+err.Error())
			case o.Optional != nil && o.Optional(r):
				next.ServeHTTP(w, r)
			default:
				log.Debug("no credential", "listener", o.Listener, "peer", remote(r))
				unauthorized(w, challenges, "authentication required: this listener accepts: "+methods)
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
