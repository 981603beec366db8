package taskmanager

import (
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// credentialsFor is what the tasks of a job get as their RuntimeContext's Credentials: the
// TaskManager's Kerberos login contexts (security.kerberos.login.contexts). Delegation tokens
// pushed for the job come first once the JobManager sends them.
func (tm *TaskManager) credentialsFor(jobID string) credentials.Source {
	_ = jobID // the delegation tokens held for the job go here
	return credentials.Chain(credentials.FromLogin(tm.krb))
}
