package jobmanager

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

// setupKerberos starts the JobManager's Kerberos login service when
// security.kerberos.login.* asks for one (a keytab, or the ticket cache for
// named login contexts). A login that fails stops start-up with the
// reason: a cluster that cannot reach its Kerberos-secured systems should
// say so at once, not at the first job.
func (jm *JobManager) setupKerberos(ctx context.Context) error {
	kc, err := kerberos.ConfigFrom(jm.cfg)
	if err != nil {
		return err
	}
	if !kc.Enabled() {
		return nil
	}
	l, err := kerberos.NewLogin(ctx, kc, jm.log)
	if err != nil {
		return err
	}
	jm.krb = l
	go l.Run(ctx)
	st := l.Status()
	jm.log.Info("kerberos login", "principal", st.Principal, "source", st.Source, "expires", st.Expires.Format(time.RFC3339))
	if st.Source == kerberos.SourceTicketCache {
		jm.log.Warn("kerberos credentials come from a ticket cache only: the cluster stops reaching Kerberos-secured systems when the ticket expires, unless kinit renews it",
			"expires", st.Expires.Format(time.RFC3339), "renew-till", st.RenewTill.Format(time.RFC3339))
	}
	return nil
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
