package jobmanager

import (
	"net/http"

	"github.com/sluice-dev/sluice/internal/security/authn"
)

// buildHandlerChain is the whole REST filter chain of one listener in
// front of the router, in the order of Kubernetes' apiserver
// (DefaultBuildHandlerChain), outermost first:
//
//	security headers (on every answer, redirects and 404s included)
//	request info    id, listener, canonical path, base path, endpoint
//	recovery, access log
//	dashboard       the dashboard's static files, to everyone: they hold
//	                no data, and the login page must load before a login
//	origin          a state-changing request a browser sends from another
//	                site is refused, whatever credential it carries
//	authentication  the listener's methods; failures are audited and limited
//	CSRF            a state-changing request made with the session cookie
//	                carries the session's CSRF token
//	audit           authorization decisions below are written to the audit log
//	authorization   the endpoint's verb on its resource
//	router          the handler (which authorizes per-item on top: the job
//	                lists, a submission's data)
func (rs *restServer) buildHandlerChain(l Listener) http.Handler {
	sec, log := rs.sec, rs.jm.log
	authentication := authn.Filter(authn.FilterOptions{
		Listener: l.Name, Chain: sec.chains[l.Name], Limiter: sec.limiter, Log: log,
		RemoteAddr: func(r *http.Request) string { return infoFrom(r.Context()).ClientAddr },
		OnFailure:  auditAuthnFailure(sec.audit),
		Optional:   func(r *http.Request) bool { return infoFrom(r.Context()).Route.optionalAuthn() },
	})
	return chain(rs.mux,
		withSecurityHeaders,
		rs.withRequestInfo(l),
		withRecover(log),
		withAccessLog(log),
		rs.withDashboard,
		withOriginCheck,
		authentication,
		rs.withCSRF,
		withAudit(sec.audit),
		rs.withAuthorization,
	)
}
