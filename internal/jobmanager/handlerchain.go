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
//	authentication  the listener's methods; failures are audited and limited
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
	})
	return chain(rs.mux,
		withSecurityHeaders,
		rs.withRequestInfo(l),
		withRecover(log),
		withAccessLog(log),
		authentication,
		withAudit(sec.audit),
		rs.withAuthorization,
	)
}
