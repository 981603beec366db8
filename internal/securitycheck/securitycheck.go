// Package securitycheck is `sluice security check`: it runs the start-up
// validation of the JobManager and the TaskManager (the same functions
// start-up runs, so the check refuses exactly what start-up refuses), then
// the deeper checks the security packages offer (kerberos.Diagnose,
// tlsconf.Check: KDC reachable, clock skew, expiry warnings), and returns
// the findings for the command to print.
package securitycheck

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/security/diag"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/taskmanager"
)

// Roles whose start-up is validated.
const (
	RoleJobManager  = "jobmanager"
	RoleTaskManager = "taskmanager"
	RoleAll         = "all"
)

// Options configure a check.
type Options struct {
	Config *config.Config
	// Role is RoleJobManager, RoleTaskManager or RoleAll (default).
	Role string
	// Now dates certificates and tickets; WarnWithin is how close to
	// expiry a certificate gets a warning.
	Now        time.Time
	WarnWithin time.Duration
	// Getenv reads KRB5_CONFIG and KRB5CCNAME.
	Getenv func(string) string
	// TaskManagerID and JoinToken are what `sluice taskmanager` would get
	// as --id and --join-token ("" when not given).
	TaskManagerID, JoinToken string
}

// ValidateRole checks a --role value.
func ValidateRole(role string) error {
	switch role {
	case "", RoleAll, RoleJobManager, RoleTaskManager:
		return nil
	}
	return fmt.Errorf("--role %q: want jobmanager, taskmanager or all", role)
}

// Run runs the checks and returns their findings, start-up first.
func Run(ctx context.Context, o Options) diag.Findings {
	var f diag.Findings
	if o.Role == "" || o.Role == RoleAll || o.Role == RoleJobManager {
		startup(&f, "JobManager", "sluice jobmanager", jobmanager.Validate(ctx, o.Config, nil))
	}
	if o.Role == "" || o.Role == RoleAll || o.Role == RoleTaskManager {
		startup(&f, "TaskManager", "sluice taskmanager", taskmanager.Validate(o.Config, o.TaskManagerID, o.JoinToken))
	}
	f = append(f, kerberos.Diagnose(ctx, o.Config, o.Getenv, o.Now)...)
	f = append(f, tlsconf.Check(o.Config, o.Now, o.WarnWithin)...)
	return f
}

// startup turns the error of a role's start-up validation into a finding
// whose message is the error start-up prints.
func startup(f *diag.Findings, role, command string, err error) {
	subject := role + " start-up"
	if err != nil {
		f.Failf(subject, "correct what the error names: `"+command+"` refuses to start with this configuration", "%v", err)
		return
	}
	f.OKf(subject, "the configuration passes the checks `%s` runs before it listens", command)
}
