package jobmanager

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/security/audit"
	"github.com/sluice-dev/sluice/internal/security/authz/opa"
	"github.com/sluice-dev/sluice/internal/security/authz/webhook"

	"github.com/sluice-dev/sluice/internal/security/authz"
)

// externalAuthorizer builds the webhook or OPA authorizer.
func (jm *JobManager) externalAuthorizer(mode string) (authz.Authorizer, error) {
	switch mode {
	case "webhook":
		return webhook.FromConfig(jm.cfg, jm.log)
	case "opa":
		return opa.FromConfig(jm.cfg, jm.log)
	}
	return nil, fmt.Errorf("security.authorization.mode %q: want allow-all, acl, webhook or opa", mode)
}

// auditDecision writes one decision to the audit log.
func (jm *JobManager) auditDecision(a authz.Attributes, allowed bool, by, reason string) {
	if jm.audit == nil {
		return
	}
	decision := "deny"
	if allowed {
		decision = "allow"
	}
	if !jm.audit.Enabled(decision) {
		return
	}
	var data []audit.DataAccess
	for _, d := range a.Data {
		data = append(data, audit.DataAccess(d))
	}
	jm.audit.Log(audit.Event{
		Time: time.Now().UTC(), RequestID: a.RequestID, User: a.User, Groups: a.Groups, Method: a.Method,
		Verb: a.Verb, Resource: a.Resource, Data: data, Decision: decision, Authorizer: by, Reason: reason,
		Listener: a.Listener, RemoteAddr: a.RemoteAddr,
	})
}
