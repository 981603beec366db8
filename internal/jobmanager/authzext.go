package jobmanager

import (
	"fmt"

	"github.com/sluice-dev/sluice/internal/security/authz"
)

// externalAuthorizer builds the webhook or OPA authorizer.
func (jm *JobManager) externalAuthorizer(mode string) (authz.Authorizer, error) {
	return nil, fmt.Errorf("security.authorization.mode %q: want allow-all, acl, webhook or opa", mode)
}

// auditDecision writes one decision to the audit log.
func (jm *JobManager) auditDecision(a authz.Attributes, allowed bool, by, reason string) {}
