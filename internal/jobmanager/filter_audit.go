package jobmanager

import (
	"context"
	"net/http"
	"time"

	"github.com/sluice-dev/sluice/internal/security/audit"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

type auditKey struct{}

// withAudit gives the rest of the chain the audit log: the decisions made
// for this request (the route's, and the data-level checks of a
// submission) are written to it.
func withAudit(l *audit.Logger) filter {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), auditKey{}, l)))
		})
	}
}

func auditLogFrom(ctx context.Context) *audit.Logger {
	l, _ := ctx.Value(auditKey{}).(*audit.Logger)
	return l
}

// auditDecision writes one authorization decision to the request's audit
// log, if it has one.
func auditDecision(ctx context.Context, a authz.Attributes, allowed bool, by, reason string) {
	l := auditLogFrom(ctx)
	decision := "deny"
	if allowed {
		decision = "allow"
	}
	if !l.Enabled(decision) {
		return
	}
	var data []audit.DataAccess
	for _, d := range a.Data {
		data = append(data, audit.DataAccess(d))
	}
	l.Log(audit.Event{
		Time: time.Now().UTC(), RequestID: a.RequestID, User: a.User, Groups: a.Groups, Method: a.Method,
		Verb: a.Verb, Resource: a.Resource, Data: data, Decision: decision, Authorizer: by, Reason: reason,
		Listener: a.Listener, RemoteAddr: a.RemoteAddr,
	})
}
