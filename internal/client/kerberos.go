package client

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

// kerberosAuth signs each request with a SPNEGO token for one service
// principal, from the user's MIT ticket cache (what kinit wrote).
type kerberosAuth struct {
	cl       *krbclient.Client
	spn      string
	ccache   string
	tgtEnd   time.Time
	client   string // user@REALM, for errors
	krb5conf string
}

// newKerberosAuth loads the ticket cache and krb5.conf. It fails early,
// with what to do, when there is no cache or its TGT has expired.
func newKerberosAuth(spn string, getenv func(string) string, now time.Time) (*kerberosAuth, error) {
	// The kerberos package resolves krb5.conf and the ticket cache as MIT
	// does (KRB5_CONFIG, KRB5CCNAME with DIR: collections,
	// default_ccache_name): the login service and `sluice security check`
	// use the same resolution, so all three read the same cache.
	cc, conf, ccPath, confPath, err := loadUserTicketCache(getenv)
	if err != nil {
		return nil, err
	}
	a := &kerberosAuth{spn: spn, ccache: ccPath, krb5conf: confPath,
		client: cc.DefaultPrincipal.PrincipalName.PrincipalNameString() + "@" + cc.DefaultPrincipal.Realm}
	for _, e := range cc.GetEntries() {
		if len(e.Server.PrincipalName.NameString) == 2 && e.Server.PrincipalName.NameString[0] == "krbtgt" &&
			e.Server.PrincipalName.NameString[1] == cc.DefaultPrincipal.Realm {
			a.tgtEnd = e.EndTime
		}
	}
	if a.tgtEnd.IsZero() {
		return nil, fmt.Errorf("--kerberos: the ticket cache %s holds no ticket-granting ticket for %s: run kinit", ccPath, a.client)
	}
	if now.After(a.tgtEnd) {
		return nil, fmt.Errorf("--kerberos: the Kerberos ticket of %s expired at %s: run kinit %s", a.client, a.tgtEnd.Local().Format(time.RFC3339), a.client)
	}
	a.cl, err = krbclient.NewFromCCache(cc, conf, krbclient.DisablePAFXFAST(true))
	if err != nil {
		return nil, fmt.Errorf("--kerberos: ticket cache %s: %w (run kinit again)", ccPath, err)
	}
	return a, nil
}

// loadUserTicketCache reads krb5.conf and the user's ticket cache, resolved as MIT does, for
// --kerberos: the errors say what to run (kinit) or set (KRB5_CONFIG, KRB5CCNAME).
func loadUserTicketCache(getenv func(string) string) (cc *credentials.CCache, conf *krb5config.Config, ccPath, confPath string, err error) {
	conf, confPath, _, err = kerberos.LoadKrb5ConfEnv("", getenv)
	if err != nil {
		return nil, nil, "", confPath, fmt.Errorf("--kerberos: krb5.conf %s (KRB5_CONFIG, else %s): %w", confPath, kerberos.DefaultKrb5Conf, err)
	}
	ccPath, ccFrom, err := kerberos.ResolveTicketCacheEnv(confPath, getenv)
	if err != nil {
		return nil, nil, "", confPath, fmt.Errorf("--kerberos: %w", err)
	}
	cc, err = credentials.LoadCCache(ccPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, ccPath, confPath, fmt.Errorf("--kerberos: no Kerberos ticket cache at %s (%s): run kinit first (or set KRB5CCNAME)", ccPath, ccFrom)
		}
		return nil, nil, ccPath, confPath, fmt.Errorf("--kerberos: ticket cache %s: %w (run kinit again)", ccPath, err)
	}
	return cc, conf, ccPath, confPath, nil
}

// sign sets "Authorization: Negotiate <token>" on r, getting a service
// ticket from the KDC the first time (gokrb5 caches it).
func (a *kerberosAuth) sign(r *http.Request) error {
	if time.Now().After(a.tgtEnd) {
		return fmt.Errorf("the Kerberos ticket of %s expired at %s: run kinit %s", a.client, a.tgtEnd.Local().Format(time.RFC3339), a.client)
	}
	if err := spnego.SetSPNEGOHeader(a.cl, r, a.spn); err != nil {
		return a.explain(err)
	}
	return nil
}

// explain turns gokrb5's nested error text into a sentence that says what
// to do: the three usual causes are an unreachable KDC, a service
// principal the KDC does not know and a ticket that has just run out.
func (a *kerberosAuth) explain(err error) error {
	var ke messages.KRBError
	if errors.As(err, &ke) {
		switch ke.ErrorCode {
		case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
			return fmt.Errorf("the KDC does not know the service principal %s: check --kerberos-spn (default HTTP/<host of --jobmanager>), or ask the Kerberos admin to create it", a.spn)
		case errorcode.KRB_AP_ERR_TKT_EXPIRED, errorcode.KDC_ERR_TGT_REVOKED:
			return fmt.Errorf("the Kerberos ticket of %s has expired: run kinit %s", a.client, a.client)
		}
		return fmt.Errorf("the KDC refused a ticket for %s: %s (%s)", a.spn, ke.EText, errorcode.Lookup(ke.ErrorCode))
	}
	msg := err.Error()
	var kerr krberror.Krberror
	if errors.As(err, &kerr) && kerr.RootCause == krberror.NetworkingError || strings.Contains(msg, krberror.NetworkingError) || strings.Contains(msg, "could not send") {
		return fmt.Errorf("cannot reach the KDC of realm %s (from %s) to get a ticket for %s: check that the KDC runs and the [realms] kdc entry: %v",
			a.realm(), a.krb5conf, a.spn, err)
	}
	if strings.Contains(msg, "S_PRINCIPAL_UNKNOWN") {
		return fmt.Errorf("the KDC does not know the service principal %s: check --kerberos-spn (default HTTP/<host of --jobmanager>), or ask the Kerberos admin to create it", a.spn)
	}
	if strings.Contains(msg, "TKT_EXPIRED") {
		return fmt.Errorf("the Kerberos ticket of %s has expired: run kinit %s", a.client, a.client)
	}
	return fmt.Errorf("get a Kerberos ticket for %s: %v", a.spn, err)
}

func (a *kerberosAuth) realm() string {
	_, r, _ := strings.Cut(a.client, "@")
	return r
}
