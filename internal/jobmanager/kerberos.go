package jobmanager

import (
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
)

// kerberosOverview is the /overview field that says when the cluster's
// Kerberos credentials stop working.
func (jm *JobManager) kerberosOverview() *restapi.KerberosStatus {
	if jm.krb == nil {
		return nil
	}
	st := jm.krb.Status()
	out := &restapi.KerberosStatus{
		Principal: st.Principal, Source: string(st.Source), Expires: ms(st.Expires),
		ExpiresInSeconds: int64(time.Until(st.Expires).Seconds()), Relogins: int64(st.Relogins),
	}
	if !st.RenewTill.IsZero() {
		out.RenewTill = ms(st.RenewTill)
	}
	return out
}
