package kerberos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/diag"
)

// Keys of the SPNEGO acceptor, checked beside the login's.
const (
	keyRESTKeytab    = "security.rest.authentication.kerberos.keytab"
	keyRESTPrincipal = "security.rest.authentication.kerberos.principal"
)

// Diagnose checks the Kerberos setup cfg names, deeper than start-up
// does: krb5.conf parses; each keytab (login and SPNEGO) is private,
// readable and holds its principal with a usable encryption type; the KDC
// answers and a TGT is obtained with the login keytab; the clock agrees
// with the KDC's; in ticket-cache mode, the cache (resolved as the login
// service resolves it: ResolveTicketCacheEnv) holds an unexpired TGT.
// getenv reads KRB5_CONFIG and KRB5CCNAME; now dates the ticket cache.
// What is not configured is a Skip finding.
func Diagnose(ctx context.Context, cfg *config.Config, getenv func(string) string, now time.Time) diag.Findings {
	d := &diagnosis{cfg: cfg, getenv: getenv, now: now}
	loginKeytab := cfg.String(KeyKeytab)
	loginPrincipal := cfg.String(KeyPrincipal)
	restKeytab := cfg.String(keyRESTKeytab)
	used := loginKeytab != "" || restKeytab != "" || loginPrincipal != ""

	d.checkKrb5Conf(used)
	var loginKT *keytab.Keytab
	if loginKeytab == "" {
		d.f.Skipf("Kerberos login keytab", "%s not configured", KeyKeytab)
	} else {
		loginKT = d.checkKeytab(KeyKeytab, loginKeytab, KeyPrincipal, loginPrincipal)
	}
	if restKeytab == "" {
		d.f.Skipf("SPNEGO keytab", "%s not configured", keyRESTKeytab)
	} else {
		d.checkKeytab(keyRESTKeytab, restKeytab, keyRESTPrincipal, cfg.String(keyRESTPrincipal))
	}
	d.checkLogin(ctx, loginKT, loginPrincipal)
	return d.f
}

type diagnosis struct {
	cfg    *config.Config
	getenv func(string) string
	now    time.Time
	f      diag.Findings

	krb5     *krb5config.Config // nil when krb5.conf did not parse
	krb5Path string
}

func (d *diagnosis) checkKrb5Conf(used bool) {
	from := KeyKrb5Conf
	switch {
	case d.cfg.String(KeyKrb5Conf) != "":
	case d.getenv("KRB5_CONFIG") != "":
		from = "KRB5_CONFIG"
	default:
		from = "the default"
	}
	conf, path, warnings, err := LoadKrb5ConfEnv(d.cfg.String(KeyKrb5Conf), d.getenv)
	d.krb5Path = path
	if err != nil {
		if _, statErr := os.Stat(path); statErr != nil && !used && from == "the default" {
			d.f.Skipf("krb5.conf", "Kerberos not configured")
			return
		}
		d.f.Failf("krb5.conf "+path, "point "+KeyKrb5Conf+" at the realm's krb5.conf, readable by the sluice user, and correct its syntax (man krb5.conf)",
			"(%s): %v", from, err)
		return
	}
	for _, w := range warnings {
		d.f.Warnf("krb5.conf", "", "%s", w)
	}
	d.krb5 = conf
	realm := conf.LibDefaults.DefaultRealm
	if realm == "" {
		d.f.Warnf("krb5.conf "+path, "set default_realm in [libdefaults]", "no default_realm in [libdefaults]: principals without @REALM cannot be resolved")
	}
	d.f.OKf("", "krb5.conf %s (%s) parses; default realm %s", path, from, orNone(realm))
}

// checkKeytab checks one keytab file and its principal; it returns the
// parsed keytab when it is usable.
func (d *diagnosis) checkKeytab(key, path, principalKey, principal string) *keytab.Keytab {
	st, err := os.Stat(path)
	if err != nil {
		d.f.Failf("", fmt.Sprintf("export the keytab to %s (kadmin ktadd -k %s <principal>) or correct %s", path, path, key),
			"keytab %s (%s): %v", path, key, err)
		return nil
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		if d.cfg.Bool(KeyAllowInsecureKeytab) {
			d.f.Warnf("", "", "keytab %s (%s) has mode %04o: group or others can read it (allowed by %s)", path, key, perm, KeyAllowInsecureKeytab)
		} else {
			d.f.Failf("", fmt.Sprintf("chmod 600 %s (owned by the user sluice runs as)", path),
				"keytab %s (%s) has mode %04o: group or others can read it, and whoever reads it is the principal", path, key, perm)
		}
	} else {
		d.f.OKf("", "keytab %s (%s) has mode %04o", path, key, st.Mode().Perm())
	}
	kt, err := keytab.Load(path)
	if err != nil {
		d.f.Failf("", fmt.Sprintf("make %s readable by the user sluice runs as, or export the keytab again", path), "keytab %s (%s) cannot be read: %v", path, key, err)
		return nil
	}
	if principal == "" {
		d.f.Failf("", fmt.Sprintf("set %s to the principal whose key the keytab holds (%s)", principalKey, strings.Join(keytabPrincipals(kt), ", ")),
			"%s is not set", principalKey)
		return nil
	}
	name, realm := d.splitPrincipal(principal)
	var etypes []string
	usable := false
	for _, e := range kt.Entries {
		if strings.Join(e.Principal.Components, "/") != name || e.Principal.Realm != realm {
			continue
		}
		etypes = append(etypes, fmt.Sprintf("%s (kvno %d)", etypeName(e.Key.KeyType), e.KVNO))
		if _, err := krbcrypto.GetEtype(e.Key.KeyType); err == nil && e.Key.KeyType != etypeID.RC4_HMAC && e.Key.KeyType != etypeID.DES3_CBC_SHA1_KD {
			usable = true
		}
	}
	full := name + "@" + realm
	switch {
	case len(etypes) == 0:
		d.f.Failf("", fmt.Sprintf("export the principal's key: kadmin -q \"ktadd -k %s %s\" (or correct %s)", path, full, principalKey),
			"keytab %s holds no key for %s (it holds: %s)", path, full, orNone(strings.Join(keytabPrincipals(kt), ", ")))
		return nil
	case !usable:
		d.f.Failf("", fmt.Sprintf("export an AES key: kadmin -q \"ktadd -k %s -e aes256-cts-hmac-sha1-96:normal %s\"", path, full),
			"keytab %s has no usable encryption type for %s: %s", path, full, strings.Join(etypes, ", "))
		return nil
	}
	d.f.OKf("", "keytab %s holds %s: %s", path, full, strings.Join(etypes, ", "))
	return kt
}

// splitPrincipal splits name@REALM, the realm defaulting to krb5.conf's.
func (d *diagnosis) splitPrincipal(p string) (string, string) {
	name, realm, ok := strings.Cut(p, "@")
	if !ok && d.krb5 != nil {
		realm = d.krb5.LibDefaults.DefaultRealm
	}
	return name, realm
}

// etypeNames are MIT's names of the encryption types gokrb5 knows.
var etypeNames = map[int32]string{
	etypeID.AES256_CTS_HMAC_SHA384_192: "aes256-cts-hmac-sha384-192",
	etypeID.AES128_CTS_HMAC_SHA256_128: "aes128-cts-hmac-sha256-128",
	etypeID.AES256_CTS_HMAC_SHA1_96:    "aes256-cts-hmac-sha1-96",
	etypeID.AES128_CTS_HMAC_SHA1_96:    "aes128-cts-hmac-sha1-96",
	etypeID.DES3_CBC_SHA1_KD:           "des3-cbc-sha1",
	etypeID.RC4_HMAC:                   "arcfour-hmac",
}

func etypeName(id int32) string {
	if n, ok := etypeNames[id]; ok {
		return n
	}
	return fmt.Sprintf("etype %d (unsupported)", id)
}

// checkLogin logs in with the keytab (KDC reachable, key valid), then
// measures the clock offset from the KDC's own time.
func (d *diagnosis) checkLogin(ctx context.Context, kt *keytab.Keytab, principal string) {
	if kt == nil || d.krb5 == nil {
		if d.cfg.String(KeyKeytab) == "" {
			d.f.Skipf("KDC login and clock skew", "no login keytab configured")
			d.checkTicketCache()
		} else {
			d.f.Skipf("KDC login and clock skew", "fix the keytab and krb5.conf first")
		}
		return
	}
	name, realm := d.splitPrincipal(principal)
	cl := krbclient.NewWithKeytab(name, realm, kt, d.krb5, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	kdcs := d.kdcList(realm)
	// gokrb5 takes no context: log in aside so the caller's deadline holds.
	done := make(chan error, 1)
	go func() { done <- cl.Login() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("networking: %w", ctx.Err())
	}
	if err != nil {
		msg := err.Error()
		var ke messages.KRBError
		switch {
		case errors.As(err, &ke) && ke.ErrorCode == errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN || strings.Contains(msg, "CLIENT_NOT_FOUND") || strings.Contains(msg, "C_PRINCIPAL_UNKNOWN"):
			d.f.Failf("", fmt.Sprintf("create the principal (kadmin -q \"addprinc -randkey %s@%s\") and export its key, or correct %s", name, realm, KeyPrincipal),
				"the KDC of %s does not know %s@%s", realm, name, realm)
		case strings.Contains(msg, "PREAUTH_FAILED") || strings.Contains(msg, "decrypt") || strings.Contains(msg, "integrity"):
			d.f.Failf("", "the keytab's key is stale (the key version changed on the KDC): export it again with kadmin ktadd",
				"the KDC refused the key of %s@%s from the keytab: %s", name, realm, lastPart(msg))
		case strings.Contains(msg, "networking") || strings.Contains(msg, "could not send") || strings.Contains(msg, "connection refused") || strings.Contains(msg, "timeout"):
			d.f.Failf("", fmt.Sprintf("start the KDC, or correct kdc = in [realms] %s of %s (and open port 88 or the one named)", realm, d.krb5Path),
				"KDC of realm %s not reachable at %s: %s", realm, kdcs, lastPart(msg))
		default:
			d.f.Failf("", "see the error; check the realm name and [realms] in krb5.conf", "login as %s@%s with the keytab failed: %s", name, realm, lastPart(msg))
		}
		d.f.Skipf("clock skew", "the KDC did not answer a login")
		return
	}
	d.f.OKf("", "KDC of realm %s reachable at %s: TGT obtained for %s@%s", realm, kdcs, name, realm)
	d.checkClock(name, realm, kt)
}

func (d *diagnosis) kdcList(realm string) string {
	_, kdcs, err := d.krb5.GetKDCs(realm, false)
	if err != nil || len(kdcs) == 0 {
		return "(no KDC in krb5.conf)"
	}
	var l []string
	for i := 1; i <= len(kdcs); i++ {
		l = append(l, kdcs[i])
	}
	return strings.Join(l, ", ")
}

// checkClock asks the KDC for its time: an AS-REQ without
// pre-authentication gets either a PREAUTH_REQUIRED error, which carries
// the KDC's time in clear, or an AS-REP whose encrypted part (readable
// with the keytab) carries it. Kerberos refuses messages more than five
// minutes apart by default, so a drift is worth catching before it bites.
func (d *diagnosis) checkClock(name, realm string, kt *keytab.Keytab) {
	pn := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, name)
	req, err := messages.NewASReqForTGT(realm, d.krb5, pn)
	if err != nil {
		d.f.Skipf("clock skew", "cannot build a request: %v", err)
		return
	}
	b, err := req.Marshal()
	if err != nil {
		d.f.Skipf("clock skew", "cannot build a request: %v", err)
		return
	}
	sent := time.Now()
	resp, err := d.exchangeKDC(realm, b)
	if err != nil {
		d.f.Skipf("clock skew", "no answer from the KDC: %v", err)
		return
	}
	rtt := time.Since(sent)
	var kdcTime time.Time
	var ke messages.KRBError
	if err := ke.Unmarshal(resp); err == nil {
		kdcTime = ke.STime.Add(time.Duration(ke.Susec) * time.Microsecond)
	} else {
		var rep messages.ASRep
		if err := rep.Unmarshal(resp); err != nil {
			d.f.Skipf("clock skew", "the KDC's answer is neither an error nor a ticket: %v", err)
			return
		}
		if _, err := rep.DecryptEncPart(credentials.New(name, realm).WithKeytab(kt)); err != nil {
			d.f.Skipf("clock skew", "cannot read the KDC's time from its answer: %v", err)
			return
		}
		kdcTime = rep.DecryptedEncPart.AuthTime
	}
	skew := sent.Add(rtt / 2).Sub(kdcTime)
	if skew < 0 {
		skew = -skew
	}
	limit := d.krb5.LibDefaults.Clockskew
	if limit == 0 {
		limit = 5 * time.Minute
	}
	switch {
	case skew >= limit:
		d.f.Failf("", "synchronise the clocks with NTP (chrony, systemd-timesyncd) on this host and the KDC",
			"clock differs from the KDC's by %s (Kerberos allows %s)", skew.Round(time.Second), limit)
	case skew >= limit/2:
		d.f.Warnf("", "check NTP", "clock differs from the KDC's by %s (Kerberos allows %s)", skew.Round(time.Second), limit)
	default:
		d.f.OKf("", "clock agrees with the KDC's within %s (allowed: %s)", max(skew, time.Second).Round(time.Second), limit)
	}
}

// exchangeKDC sends one message to the realm's first KDC that answers,
// over UDP and then TCP (RFC 4120 7.2: TCP messages are length-prefixed).
func (d *diagnosis) exchangeKDC(realm string, b []byte) ([]byte, error) {
	var last error
	for _, tcp := range []bool{false, true} {
		_, kdcs, err := d.krb5.GetKDCs(realm, tcp)
		if err != nil {
			last = err
			continue
		}
		for i := 1; i <= len(kdcs); i++ {
			resp, err := exchange(kdcs[i], tcp, b)
			if err == nil {
				return resp, nil
			}
			last = err
		}
	}
	return nil, last
}

func exchange(addr string, tcp bool, b []byte) ([]byte, error) {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	conn, err := net.DialTimeout(network, addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if !tcp {
		if _, err := conn.Write(b); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if _, err := conn.Write(append(msg, b...)); err != nil {
		return nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("KDC answer of %d bytes", n)
	}
	resp := make([]byte, n)
	_, err = io.ReadFull(conn, resp)
	return resp, err
}

// checkTicketCache reports, for a ticket-cache login, when the cached
// TGT runs out: the cluster stops working at that time unless kinit
// renews it. The cache is the one the login service reads.
func (d *diagnosis) checkTicketCache() {
	if !d.cfg.Bool(KeyUseTicketCache) || d.cfg.String(KeyPrincipal) == "" {
		return
	}
	path, from, err := ResolveTicketCacheEnv(d.krb5Path, d.getenv)
	if err != nil {
		d.f.Failf("ticket cache", "use a FILE: ticket cache, or a keytab", "%v", err)
		return
	}
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		d.f.Failf("ticket cache "+path+" ("+from+")", "run kinit as the user sluice runs as, or configure "+KeyKeytab, "%v", err)
		return
	}
	for _, e := range cc.GetEntries() {
		if len(e.Server.PrincipalName.NameString) == 2 && e.Server.PrincipalName.NameString[0] == "krbtgt" {
			switch left := e.EndTime.Sub(d.now); {
			case left <= 0:
				d.f.Failf("", "run kinit again, or use a keytab ("+KeyKeytab+") for a cluster that must keep running",
					"the TGT in ticket cache %s (%s) expired at %s", path, from, e.EndTime.Format(time.RFC3339))
			default:
				d.f.Warnf("", "", "ticket-cache login: the TGT in %s (%s) expires at %s (in %s); the cluster stops authenticating then unless kinit renews it", path, from, e.EndTime.Format(time.RFC3339), left.Round(time.Minute))
			}
			return
		}
	}
	d.f.Failf("", "run kinit", "ticket cache %s (%s) holds no TGT", path, from)
}

func lastPart(s string) string {
	if i := strings.LastIndex(s, " < "); i >= 0 {
		return s[i+3:]
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
