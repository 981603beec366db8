package authn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

// KerberosChallenge is the challenge of SPNEGO (RFC 4559). It carries no
// realm: a Negotiate client picks the service principal from the URL.
const KerberosChallenge = "Negotiate"

// Keys of the SPNEGO acceptor, named in errors so the user knows what to fix.
const (
	KerberosKeytabKey    = "security.rest.authentication.kerberos.keytab"
	KerberosPrincipalKey = "security.rest.authentication.kerberos.principal"
)

// KerberosOptions configure NewKerberos.
type KerberosOptions struct {
	// Keytab is the file holding the key of Principal.
	Keytab string
	// Principal is the service principal clients get tickets for, as
	// HTTP/host@REALM. Without a realm, the ticket's realm is accepted.
	Principal string
	// AllowInsecureKeytab accepts a keytab readable by group or others
	// (security.kerberos.login.allow-insecure-keytab).
	AllowInsecureKeytab bool
	// Rules are the principal-to-local rules (security.kerberos.principal-to-local);
	// empty means DEFAULT.
	Rules []string
	// DefaultRealm is the realm DEFAULT strips; empty means the realm of
	// Principal.
	DefaultRealm string
}

type kerberosAuthenticator struct {
	kt           *keytab.Keytab
	spn          string // without the realm
	realm        string // "" when Principal names none
	rules        *kerberos.Rules
	defaultRealm string
}

var _ Authenticator = (*kerberosAuthenticator)(nil)

// NewKerberos returns the SPNEGO authenticator: it verifies the Kerberos
// AP-REQ in "Authorization: Negotiate <base64>" with the service key from
// the keytab, and maps the client principal to a user name.
//
// It takes the lower-level gokrb5 pieces rather than its HTTP middleware,
// which writes its own 401s: here Filter answers for every method alike.
// The PAC is not decoded: it is a Microsoft extension whose absence or
// unknown buffers make gokrb5 refuse every ticket of MIT krb5 1.20+, and
// sluice takes no groups from it.
//
// Only single-round SPNEGO with a Kerberos mechanism is accepted, which is
// what curl, browsers and the sluice CLI send; a client that offers NTLM
// is refused.
func NewKerberos(o KerberosOptions) (Authenticator, error) {
	if o.Keytab == "" {
		return nil, fmt.Errorf("kerberos authentication needs a keytab: set %s", KerberosKeytabKey)
	}
	if o.Principal == "" {
		return nil, fmt.Errorf("kerberos authentication needs the service principal: set %s (e.g. HTTP/jm.example.com@EXAMPLE.COM)", KerberosPrincipalKey)
	}
	if err := kerberos.CheckKeytabFileFor(KerberosKeytabKey, o.Keytab, o.AllowInsecureKeytab); err != nil {
		return nil, err
	}
	kt, err := keytab.Load(o.Keytab)
	if err != nil {
		return nil, fmt.Errorf("%s: read keytab %s: %w", KerberosKeytabKey, o.Keytab, err)
	}
	spn, realm, _ := strings.Cut(o.Principal, "@")
	if !strings.Contains(spn, "/") {
		return nil, fmt.Errorf("%s %q: want a service principal such as HTTP/jm.example.com@EXAMPLE.COM", KerberosPrincipalKey, o.Principal)
	}
	if !keytabHas(kt, spn, realm) {
		return nil, fmt.Errorf("%s: keytab %s holds no key for %s: export it with kadmin ktadd -k %s %s",
			KerberosKeytabKey, o.Keytab, o.Principal, o.Keytab, o.Principal)
	}
	rules, err := kerberos.ParseRules(o.Rules)
	if err != nil {
		return nil, config.KeyError("security.kerberos.principal-to-local", err)
	}
	a := &kerberosAuthenticator{kt: kt, spn: spn, realm: realm, rules: rules, defaultRealm: o.DefaultRealm}
	if a.defaultRealm == "" {
		a.defaultRealm = realm
	}
	return a, nil
}

// keytabHas reports whether kt holds a key for spn (in realm, when set).
func keytabHas(kt *keytab.Keytab, spn, realm string) bool {
	for _, e := range kt.Entries {
		if strings.Join(e.Principal.Components, "/") == spn && (realm == "" || e.Principal.Realm == realm) {
			return true
		}
	}
	return false
}

func (a *kerberosAuthenticator) AuthenticateRequest(r *http.Request) (User, bool, error) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Negotiate") {
		return User{}, false, nil
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return User{}, false, errors.New("empty Negotiate token")
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return User{}, false, errors.New("the Negotiate token is not base64")
	}
	apreq, err := apReqOf(raw)
	if err != nil {
		return User{}, false, err
	}
	got := strings.Join(apreq.Ticket.SName.NameString, "/")
	if got != a.spn || (a.realm != "" && apreq.Ticket.Realm != a.realm) {
		return User{}, false, fmt.Errorf("the Kerberos ticket is for %s@%s, not for this server (%s)", got, apreq.Ticket.Realm, a.principal())
	}
	opts := []func(*service.Settings){service.DecodePAC(false), service.KeytabPrincipal(a.principal())}
	if h, err := types.GetHostAddress(r.RemoteAddr); err == nil {
		opts = append(opts, service.ClientAddress(h))
	}
	ok, creds, err := service.VerifyAPREQ(apreq, service.NewSettings(a.kt, opts...))
	if err != nil || !ok {
		return User{}, false, fmt.Errorf("invalid Kerberos ticket: %s", krbReason(err))
	}
	principal := creds.CName().PrincipalNameString() + "@" + creds.Domain()
	name, err := a.rules.Map(a.defaultRealm, principal)
	if err != nil {
		return User{}, false, fmt.Errorf("kerberos principal %s: %w", principal, err)
	}
	return User{Name: name, Method: MethodKerberos}, true, nil
}

func (a *kerberosAuthenticator) principal() string {
	if a.realm == "" {
		return a.spn
	}
	return a.spn + "@" + a.realm
}

// apReqOf extracts the Kerberos AP-REQ from a SPNEGO NegTokenInit, or
// from a raw Kerberos GSS token as some clients send.
func apReqOf(raw []byte) (*messages.APReq, error) {
	mech := raw
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(raw); err == nil {
		if !st.Init || len(st.NegTokenInit.MechTypes) == 0 {
			return nil, errors.New("the Negotiate token is not an initial SPNEGO token")
		}
		oid := st.NegTokenInit.MechTypes[0]
		if !oid.Equal(gssapi.OIDKRB5.OID()) && !oid.Equal(gssapi.OIDMSLegacyKRB5.OID()) {
			return nil, errors.New("the Negotiate token offers no Kerberos mechanism (NTLM is not supported)")
		}
		mech = st.NegTokenInit.MechTokenBytes
	}
	var k spnego.KRB5Token
	if err := k.Unmarshal(mech); err != nil || !k.IsAPReq() {
		return nil, errors.New("the Negotiate token carries no Kerberos AP-REQ")
	}
	return &k.APReq, nil
}

// krbReason is a short reason for a refused ticket: gokrb5's errors nest
// their context, and the innermost KRB error text is what a user can act on.
func krbReason(err error) string {
	if err == nil {
		return "not valid"
	}
	var ke messages.KRBError
	if errors.As(err, &ke) {
		return ke.EText
	}
	s := err.Error()
	if i := strings.LastIndex(s, " < "); i >= 0 {
		s = s[i+3:]
	}
	return s
}

func (a *kerberosAuthenticator) Method() string { return MethodKerberos }

func (a *kerberosAuthenticator) Challenge() string { return KerberosChallenge }
