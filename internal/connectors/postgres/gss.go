package postgres

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// pgconn takes one process-wide GSS provider whose constructor gets no argument, while each
// connection of each job must use its own TaskManager credentials. So the sink registers a
// connection's Kerberos client under a handle before it connects and passes the handle
// through pgconn to the provider inside the Kerberos service name (Config.KerberosSrvName),
// which pgconn hands back to GetInitToken with the host it connects to. A service name
// without a handle (pgconn used by something else) gets no credentials.
func init() {
	pgconn.RegisterGSSProvider(func() (pgconn.GSS, error) { return &gssClient{}, nil })
}

// handleSep separates the service name from the handle; no Kerberos name holds a NUL.
const handleSep = "\x00sluice-gss:"

// gssLogin is what a connection authenticates with: a Kerberos client, or why there is none.
type gssLogin struct {
	krb *credentials.Kerberos
	err error // why krb is nil: the credentials request's error
}

var gssLogins struct {
	next atomic.Uint64
	m    sync.Map // handle -> *gssLogin
}

// registerGSS registers l for one connection and returns the service name to put in
// KerberosSrvName and the function that unregisters it.
func registerGSS(service string, l *gssLogin) (string, func()) {
	h := strconv.FormatUint(gssLogins.next.Add(1), 10)
	gssLogins.m.Store(h, l)
	return service + handleSep + h, func() { gssLogins.m.Delete(h) }
}

// gssClient is one GSSAPI (Kerberos through SPNEGO) authentication exchange.
type gssClient struct{ principal, spn string }

// GetInitToken implements pgconn.GSS: the SPNEGO token with an AP-REQ for SERVICE/host.
func (g *gssClient) GetInitToken(host, service string) ([]byte, error) {
	service, h, ok := strings.Cut(service, handleSep)
	var l *gssLogin
	if ok {
		if v, found := gssLogins.m.Load(h); found {
			l = v.(*gssLogin)
		}
	}
	if l == nil {
		return nil, errors.New("the server asks for Kerberos (GSSAPI) authentication, but this connection has no Kerberos credentials")
	}
	if l.krb == nil {
		why := "the TaskManager has no Kerberos login: set security.kerberos.login.keytab and .principal (or .use-ticket-cache) and add PostgresClient to security.kerberos.login.contexts, or give a password in url"
		if l.err != nil && !errors.Is(l.err, credentials.ErrNone) {
			why = l.err.Error()
		}
		return nil, fmt.Errorf("the server asks for Kerberos (GSSAPI) authentication: %s", why)
	}
	cl, err := l.krb.Client()
	if err != nil {
		return nil, fmt.Errorf("kerberos login context %s: %w", l.krb.Context, err)
	}
	g.principal = l.krb.Principal
	g.spn = service + "/" + host
	st, err := spnego.SPNEGOClient(cl, g.spn).InitSecContext()
	if err != nil {
		return nil, fmt.Errorf("kerberos: %s cannot get a ticket for the server's principal %s: %v (is the server's principal %s in the realm? krbsrvname in url sets its first part, the url's host the second)",
			g.principal, g.spn, err, g.spn)
	}
	return st.Marshal()
}

// GetInitTokenFromSPN implements pgconn.GSS; the sink never sets krbspn.
func (g *gssClient) GetInitTokenFromSPN(string) ([]byte, error) {
	return nil, errors.New("krbspn is not supported: give krbsrvname in url")
}

// Continue implements pgconn.GSS: the server's SPNEGO answer ends the exchange.
func (g *gssClient) Continue(in []byte) (bool, []byte, error) {
	var t spnego.SPNEGOToken
	if err := t.Unmarshal(in); err != nil {
		return false, nil, fmt.Errorf("kerberos: the server's answer is not SPNEGO: %w", err)
	}
	if !t.Resp {
		return false, nil, errors.New("kerberos: the server answered with a NegTokenInit, not a NegTokenResp")
	}
	switch t.NegTokenResp.State() {
	case spnego.NegStateAcceptCompleted:
		return true, nil, nil
	case spnego.NegStateReject:
		return false, nil, fmt.Errorf("kerberos: the server rejected the ticket of %s for %s", g.principal, g.spn)
	default:
		return false, nil, fmt.Errorf("kerberos: unsupported SPNEGO state %d from the server", t.NegTokenResp.State())
	}
}
