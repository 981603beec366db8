package jobmanager

import (
	"context"
	"log/slog"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

// Validate runs what a JobManager's start-up runs on cfg before it binds
// a port, with the same functions, and returns the first error start-up
// would stop with: the internal TLS material (internaltls.SetupJobManager's
// checks, without creating the automatic CA), the job store settings, the
// REST listeners, the REST security (TLS stores, authenticators,
// authorizer, audit log: newRESTSecurity, which Run calls) and the
// Kerberos login (which logs in, as start-up does). It binds nothing and
// leaves nothing running; the audit log file is opened and closed, so it
// is created when missing, as start-up would.
//
// `sluice security check` calls it, so the check refuses exactly what
// start-up refuses.
func Validate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := internaltls.ValidateJobManager(cfg); err != nil {
		return err
	}
	set, err := SettingsFromConfig(cfg)
	if err != nil {
		return err
	}
	rsec, err := newRESTSecurity(cfg, set, nil, log)
	if err != nil {
		return err
	}
	if rsec.audit != nil {
		rsec.audit.Close()
	}
	if _, err := kerberos.Start(ctx, cfg, log); err != nil {
		return err
	}
	return nil
}
