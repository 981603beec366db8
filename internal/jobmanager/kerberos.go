package jobmanager

import (
	"context"
	"log/slog"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

// newKerberosLogin logs the JobManager in to Kerberos when
// security.kerberos.login.* asks for it (a keytab, or the ticket cache for
// named login contexts); nil when it does not. A login that fails stops
// start-up with the reason: a cluster that cannot reach its
// Kerberos-secured systems should say so at once, not at the first job.
// The caller runs the login service (relogin).
func newKerberosLogin(ctx context.Context, cfg *config.Config, log *slog.Logger) (*kerberos.Login, error) {
	kc, err := kerberos.ConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	if !kc.Enabled() {
		return nil, nil
	}
	l, err := kerberos.NewLogin(ctx, kc, log)
	if err != nil {
		return nil, err
	}
	st := l.Status()
	log.Info("kerberos login", "principal", st.Principal, "source", st.Source, "expires", st.Expires.Format(time.RFC3339))
	if st.Source == kerberos.SourceTicketCache {
		log.Warn("kerberos credentials come from a ticket cache only: the cluster stops reaching Kerberos-secured systems when the ticket expires, unless kinit renews it",
			"expires", st.Expires.Format(time.RFC3339), "renew-till", st.RenewTill.Format(time.RFC3339))
	}
	return l, nil
}

// kerberosOverview is the /overview field that says when the cluster's
// Kerberos credentials stop working.
func (jm *JobManager) kerberosOverview() map[string]any {
	if jm.krb == nil {
		return nil
	}
	st := jm.krb.Status()
	out := map[string]any{
		"principal": st.Principal, "source": st.Source, "expires": ms(st.Expires),
		"expires-in-seconds": int64(time.Until(st.Expires).Seconds()), "relogins": st.Relogins,
	}
	if !st.RenewTill.IsZero() {
		out["renew-till"] = ms(st.RenewTill)
	}
	return out
}
