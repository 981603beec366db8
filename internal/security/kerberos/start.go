package kerberos

import (
	"context"
	"log/slog"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
)

// Start logs the process in to Kerberos when
// security.kerberos.login.* asks for it (a keytab, or the ticket cache for
// named login contexts); nil when it does not. A login that fails stops
// start-up with the reason: a cluster that cannot reach its
// Kerberos-secured systems should say so at once, not at the first job.
// The caller runs the login service (Run: relogin).
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Login, error) {
	kc, err := ConfigFrom(cfg)
	if err != nil {
		return nil, err
	}
	if !kc.Enabled() {
		return nil, nil
	}
	l, err := NewLogin(ctx, kc, log)
	if err != nil {
		return nil, err
	}
	st := l.Status()
	log.Info("kerberos login", "principal", st.Principal, "source", st.Source, "expires", st.Expires.Format(time.RFC3339))
	if st.Source == SourceTicketCache {
		log.Warn("kerberos credentials come from a ticket cache only: the cluster stops reaching Kerberos-secured systems when the ticket expires, unless kinit renews it",
			"expires", st.Expires.Format(time.RFC3339), "renew-till", st.RenewTill.Format(time.RFC3339))
	}
	return l, nil
}
