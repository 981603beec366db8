package jobmanager

import (
	"time"
)

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
