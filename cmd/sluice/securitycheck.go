package main

import (
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
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
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

func newSecurityCheckCmd(g *globals) *cobra.Command {
	warnDays := 30
	cmd := &cobra.Command{
		Use:   "check --config FILE [--warn-days 30]",
		Short: "Check the Kerberos and TLS material a configuration names, with the fix for each problem",
		Long: `Checks, for the configuration given with --config (and -D overrides): the keytabs
(security.kerberos.login.keytab, security.rest.authentication.kerberos.keytab) are readable and not
readable by group or others, hold their principal with a usable encryption type; krb5.conf parses;
the KDC answers and a TGT is obtained with the keytab; the clock agrees with the KDC's; the TLS key
and trust stores (security.ssl.internal.*, security.ssl.rest.*) load, their certificates do not
expire within --warn-days, and each trust store holds the issuer of its key store's certificate.

Prints one line per check, [ OK ], [WARN], [SKIP] or [FAIL] with the fix, and exits non-zero when
any check failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if warnDays < 0 {
				return fmt.Errorf("--warn-days %d: want a number of days, 0 or more", warnDays)
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			c := &checker{out: cmd.OutOrStdout(), cfg: cfg, now: time.Now(), warn: time.Duration(warnDays) * 24 * time.Hour, getenv: os.Getenv}
			c.run()
			if c.failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of the security checks failed", c.failed)}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&warnDays, "warn-days", warnDays, "warn about certificates that expire within this many days")
	return cmd
}

// checker runs the checks and prints the checklist.
type checker struct {
	out    io.Writer
	cfg    *config.Config
	now    time.Time
	warn   time.Duration
	getenv func(string) string
	failed int

	krb5     *krb5config.Config // nil when krb5.conf did not parse
	krb5Path string
}

func (c *checker) ok(format string, a ...any) {
	fmt.Fprintf(c.out, "[ OK ] %s\n", fmt.Sprintf(format, a...))
}

func (c *checker) warnf(format string, a ...any) {
	fmt.Fprintf(c.out, "[WARN] %s\n", fmt.Sprintf(format, a...))
}

func (c *checker) skip(format string, a ...any) {
	fmt.Fprintf(c.out, "[SKIP] %s\n", fmt.Sprintf(format, a...))
}

func (c *checker) fail(fix, format string, a ...any) {
	c.failed++
	fmt.Fprintf(c.out, "[FAIL] %s -> fix: %s\n", fmt.Sprintf(format, a...), fix)
}

func (c *checker) run() {
	loginKeytab := c.cfg.String("security.kerberos.login.keytab")
	loginPrincipal := c.cfg.String("security.kerberos.login.principal")
	restKeytab := c.cfg.String("security.rest.authentication.kerberos.keytab")
	restPrincipal := c.cfg.String("security.rest.authentication.kerberos.principal")
	kerberosUsed := loginKeytab != "" || restKeytab != "" || loginPrincipal != ""

	c.checkKrb5Conf(kerberosUsed)
	var loginKT *keytab.Keytab
	if loginKeytab == "" {
		c.skip("Kerberos login keytab (security.kerberos.login.keytab): not configured")
	} else {
		loginKT = c.checkKeytab("security.kerberos.login.keytab", loginKeytab, "security.kerberos.login.principal", loginPrincipal)
	}
	if restKeytab == "" {
		c.skip("SPNEGO keytab (security.rest.authentication.kerberos.keytab): not configured")
	} else {
		c.checkKeytab("security.rest.authentication.kerberos.keytab", restKeytab, "security.rest.authentication.kerberos.principal", restPrincipal)
	}
	c.checkLogin(loginKT, loginPrincipal)

	c.checkTLS("security.ssl.internal")
	c.checkTLS("security.ssl.rest")
}

// krb5ConfPath follows the login service: the config key, else
// KRB5_CONFIG, else /etc/krb5.conf.
func (c *checker) krb5ConfPath() (string, string) {
	if p := c.cfg.String("security.kerberos.krb5-conf.path"); p != "" {
		return p, "security.kerberos.krb5-conf.path"
	}
	if c.getenv("KRB5_CONFIG") != "" {
		return client.Krb5ConfPath(c.getenv), "KRB5_CONFIG"
	}
	return "/etc/krb5.conf", "the default"
}

func (c *checker) checkKrb5Conf(used bool) {
	_, from := c.krb5ConfPath()
	conf, path, warnings, err := kerberos.LoadKrb5Conf(c.cfg.String("security.kerberos.krb5-conf.path"))
	c.krb5Path = path
	if err != nil {
		if _, statErr := os.Stat(path); statErr != nil && !used && from == "the default" {
			c.skip("krb5.conf: Kerberos not configured")
			return
		}
		c.fail("point security.kerberos.krb5-conf.path at the realm's krb5.conf, readable by the sluice user, and correct its syntax (man krb5.conf)",
			"krb5.conf %s (%s): %v", path, from, err)
		return
	}
	for _, w := range warnings {
		c.warnf("krb5.conf %s", w)
	}
	c.krb5 = conf
	realm := conf.LibDefaults.DefaultRealm
	if realm == "" {
		c.warnf("krb5.conf %s: no default_realm in [libdefaults]: principals without @REALM cannot be resolved", path)
	}
	c.ok("krb5.conf %s (%s) parses; default realm %s", path, from, orNone(realm))
}

// checkKeytab checks one keytab file and its principal; it returns the
// parsed keytab when it is usable.
func (c *checker) checkKeytab(key, path, principalKey, principal string) *keytab.Keytab {
	st, err := os.Stat(path)
	if err != nil {
		c.fail(fmt.Sprintf("export the keytab to %s (kadmin ktadd -k %s <principal>) or correct %s", path, path, key),
			"keytab %s (%s): %v", path, key, err)
		return nil
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		if c.cfg.Bool("security.kerberos.login.allow-insecure-keytab") {
			c.warnf("keytab %s (%s) has mode %04o: group or others can read it (allowed by security.kerberos.login.allow-insecure-keytab)", path, key, perm)
		} else {
			c.fail(fmt.Sprintf("chmod 600 %s (owned by the user sluice runs as)", path),
				"keytab %s (%s) has mode %04o: group or others can read it, and whoever reads it is the principal", path, key, perm)
		}
	} else {
		c.ok("keytab %s (%s) has mode %04o", path, key, st.Mode().Perm())
	}
	kt, err := keytab.Load(path)
	if err != nil {
		c.fail(fmt.Sprintf("make %s readable by the user sluice runs as, or export the keytab again", path), "keytab %s (%s) cannot be read: %v", path, key, err)
		return nil
	}
	if principal == "" {
		c.fail(fmt.Sprintf("set %s to the principal whose key the keytab holds (%s)", principalKey, strings.Join(keytabPrincipals(kt), ", ")),
			"%s is not set", principalKey)
		return nil
	}
	name, realm := c.splitPrincipal(principal)
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
		c.fail(fmt.Sprintf("export the principal's key: kadmin -q \"ktadd -k %s %s\" (or correct %s)", path, full, principalKey),
			"keytab %s holds no key for %s (it holds: %s)", path, full, orNone(strings.Join(keytabPrincipals(kt), ", ")))
		return nil
	case !usable:
		c.fail(fmt.Sprintf("export an AES key: kadmin -q \"ktadd -k %s -e aes256-cts-hmac-sha1-96:normal %s\"", path, full),
			"keytab %s has no usable encryption type for %s: %s", path, full, strings.Join(etypes, ", "))
		return nil
	}
	c.ok("keytab %s holds %s: %s", path, full, strings.Join(etypes, ", "))
	return kt
}

// splitPrincipal splits name@REALM, the realm defaulting to krb5.conf's.
func (c *checker) splitPrincipal(p string) (string, string) {
	name, realm, ok := strings.Cut(p, "@")
	if !ok && c.krb5 != nil {
		realm = c.krb5.LibDefaults.DefaultRealm
	}
	return name, realm
}

func keytabPrincipals(kt *keytab.Keytab) []string {
	var out []string
	for _, e := range kt.Entries {
		p := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
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
func (c *checker) checkLogin(kt *keytab.Keytab, principal string) {
	if kt == nil || c.krb5 == nil {
		if c.cfg.String("security.kerberos.login.keytab") == "" {
			c.skip("KDC login and clock skew: no login keytab configured")
			c.checkTicketCache()
		} else {
			c.skip("KDC login and clock skew: fix the keytab and krb5.conf first")
		}
		return
	}
	name, realm := c.splitPrincipal(principal)
	cl := krbclient.NewWithKeytab(name, realm, kt, c.krb5, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	kdcs := c.kdcList(realm)
	if err := cl.Login(); err != nil {
		msg := err.Error()
		var ke messages.KRBError
		switch {
		case errors.As(err, &ke) && ke.ErrorCode == errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN || strings.Contains(msg, "CLIENT_NOT_FOUND") || strings.Contains(msg, "C_PRINCIPAL_UNKNOWN"):
			c.fail(fmt.Sprintf("create the principal (kadmin -q \"addprinc -randkey %s@%s\") and export its key, or correct security.kerberos.login.principal", name, realm),
				"the KDC of %s does not know %s@%s", realm, name, realm)
		case strings.Contains(msg, "PREAUTH_FAILED") || strings.Contains(msg, "decrypt") || strings.Contains(msg, "integrity"):
			c.fail("the keytab's key is stale (the key version changed on the KDC): export it again with kadmin ktadd",
				"the KDC refused the key of %s@%s from the keytab: %s", name, realm, lastPart(msg))
		case strings.Contains(msg, "networking") || strings.Contains(msg, "could not send") || strings.Contains(msg, "connection refused") || strings.Contains(msg, "timeout"):
			c.fail(fmt.Sprintf("start the KDC, or correct kdc = in [realms] %s of %s (and open port 88 or the one named)", realm, c.krb5Path),
				"KDC of realm %s not reachable at %s: %s", realm, kdcs, lastPart(msg))
		default:
			c.fail("see the error; check the realm name and [realms] in krb5.conf", "login as %s@%s with the keytab failed: %s", name, realm, lastPart(msg))
		}
		c.skip("clock skew: the KDC did not answer a login")
		return
	}
	c.ok("KDC of realm %s reachable at %s: TGT obtained for %s@%s", realm, kdcs, name, realm)
	c.checkClock(name, realm, kt)
}

func (c *checker) kdcList(realm string) string {
	_, kdcs, err := c.krb5.GetKDCs(realm, false)
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
func (c *checker) checkClock(name, realm string, kt *keytab.Keytab) {
	pn := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, name)
	req, err := messages.NewASReqForTGT(realm, c.krb5, pn)
	if err != nil {
		c.skip("clock skew: cannot build a request: %v", err)
		return
	}
	b, err := req.Marshal()
	if err != nil {
		c.skip("clock skew: cannot build a request: %v", err)
		return
	}
	sent := time.Now()
	resp, err := c.exchangeKDC(realm, b)
	if err != nil {
		c.skip("clock skew: no answer from the KDC: %v", err)
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
			c.skip("clock skew: the KDC's answer is neither an error nor a ticket: %v", err)
			return
		}
		if _, err := rep.DecryptEncPart(credentials.New(name, realm).WithKeytab(kt)); err != nil {
			c.skip("clock skew: cannot read the KDC's time from its answer: %v", err)
			return
		}
		kdcTime = rep.DecryptedEncPart.AuthTime
	}
	skew := sent.Add(rtt / 2).Sub(kdcTime)
	if skew < 0 {
		skew = -skew
	}
	limit := c.krb5.LibDefaults.Clockskew
	if limit == 0 {
		limit = 5 * time.Minute
	}
	switch {
	case skew >= limit:
		c.fail("synchronise the clocks with NTP (chrony, systemd-timesyncd) on this host and the KDC",
			"clock differs from the KDC's by %s (Kerberos allows %s)", skew.Round(time.Second), limit)
	case skew >= limit/2:
		c.warnf("clock differs from the KDC's by %s (Kerberos allows %s): check NTP", skew.Round(time.Second), limit)
	default:
		c.ok("clock agrees with the KDC's within %s (allowed: %s)", max(skew, time.Second).Round(time.Second), limit)
	}
}

// exchangeKDC sends one message to the realm's first KDC that answers,
// over UDP and then TCP (RFC 4120 7.2: TCP messages are length-prefixed).
func (c *checker) exchangeKDC(realm string, b []byte) ([]byte, error) {
	var last error
	for _, tcp := range []bool{false, true} {
		_, kdcs, err := c.krb5.GetKDCs(realm, tcp)
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
// renews it.
func (c *checker) checkTicketCache() {
	if !c.cfg.Bool("security.kerberos.login.use-ticket-cache") || c.cfg.String("security.kerberos.login.principal") == "" {
		return
	}
	path, err := client.CCachePath(c.getenv)
	if err != nil {
		c.fail("use a FILE: ticket cache", "ticket cache: %v", err)
		return
	}
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		c.fail("run kinit as the user sluice runs as, or configure security.kerberos.login.keytab", "ticket cache %s: %v", path, err)
		return
	}
	for _, e := range cc.GetEntries() {
		if len(e.Server.PrincipalName.NameString) == 2 && e.Server.PrincipalName.NameString[0] == "krbtgt" {
			switch left := e.EndTime.Sub(c.now); {
			case left <= 0:
				c.fail("run kinit again, or use a keytab (security.kerberos.login.keytab) for a cluster that must keep running",
					"the TGT in ticket cache %s expired at %s", path, e.EndTime.Format(time.RFC3339))
			default:
				c.warnf("ticket-cache login: the TGT in %s expires at %s (in %s); the cluster stops authenticating then unless kinit renews it", path, e.EndTime.Format(time.RFC3339), left.Round(time.Minute))
			}
			return
		}
	}
	c.fail("run kinit", "ticket cache %s holds no TGT", path)
}

// checkTLS loads a key store and trust store with the same code the
// processes use, then checks dates and that the trust store holds the
// issuer of the key store's certificate.
func (c *checker) checkTLS(prefix string) {
	ks := c.cfg.String(prefix + ".keystore")
	ts := c.cfg.String(prefix + ".truststore")
	what := "internal TLS"
	if strings.HasSuffix(prefix, "rest") {
		what = "REST TLS"
	}
	if ks == "" && ts == "" {
		if prefix == "security.ssl.internal" && c.cfg.Bool("security.ssl.internal.auto") {
			c.skip("%s: automatic (security.ssl.internal.auto): the cluster CA issues and renews the certificates", what)
			return
		}
		c.skip("%s (%s.keystore, .truststore): not configured", what, prefix)
		return
	}
	var leaf *x509.Certificate
	var chain []*x509.Certificate
	if ks == "" {
		c.skip("%s key store (%s.keystore): not configured", what, prefix)
	} else {
		cert, err := tlsconf.LoadKeyStore(ks, c.cfg.String(prefix+".keystore-type"), c.cfg.String(prefix+".keystore-password"), c.cfg.String(prefix+".key-password"))
		if err != nil {
			c.fail(fmt.Sprintf("correct %s.keystore and its passwords, or recreate it (sluice security create-certs)", prefix),
				"%s key store %s does not load: %v", what, ks, err)
		} else {
			for _, der := range cert.Certificate {
				if x, err := x509.ParseCertificate(der); err == nil {
					chain = append(chain, x)
				}
			}
			if len(chain) > 0 {
				leaf = chain[0]
				c.checkDates(fmt.Sprintf("%s key store %s: certificate %q", what, ks, leaf.Subject.String()), leaf, prefix+".keystore")
			}
		}
	}
	if ts == "" {
		c.skip("%s trust store (%s.truststore): not configured", what, prefix)
		return
	}
	_, roots, err := tlsconf.LoadTrustStore(ts, c.cfg.String(prefix+".truststore-type"), c.cfg.String(prefix+".truststore-password"))
	if err != nil {
		c.fail(fmt.Sprintf("correct %s.truststore and its password", prefix), "%s trust store %s does not load: %v", what, ts, err)
		return
	}
	for _, r := range roots {
		c.checkDates(fmt.Sprintf("%s trust store %s: CA %q", what, ts, r.Subject.String()), r, prefix+".truststore")
	}
	if leaf == nil {
		return
	}
	if issuer := findIssuer(chain, roots); issuer != nil {
		c.ok("%s trust store %s holds the issuer of the key store's certificate (%s)", what, ts, issuer.Subject.String())
	} else {
		c.fail(fmt.Sprintf("add the CA that issued the certificate (issuer %q) to %s, or issue the certificate from a CA that is in it", leaf.Issuer.String(), ts),
			"%s trust store %s does not hold the issuer of %q: peers presenting it would be refused", what, ts, leaf.Subject.String())
	}
}

// findIssuer returns the trusted certificate that signed a certificate
// of the chain (the leaf itself counts when it is pinned in the trust
// store), or nil.
func findIssuer(chain, roots []*x509.Certificate) *x509.Certificate {
	for _, cert := range chain {
		for _, r := range roots {
			if r.Equal(cert) {
				return r
			}
			if string(r.RawSubject) == string(cert.RawIssuer) && cert.CheckSignatureFrom(r) == nil {
				return r
			}
		}
	}
	return nil
}

func (c *checker) checkDates(what string, cert *x509.Certificate, key string) {
	exp := cert.NotAfter.UTC().Format(time.RFC3339)
	switch left := cert.NotAfter.Sub(c.now); {
	case left <= 0:
		c.fail(fmt.Sprintf("renew it (sluice security create-certs, or your CA) and update %s", key), "%s expired on %s", what, exp)
	case c.now.Before(cert.NotBefore):
		c.fail("check this host's clock, or reissue the certificate", "%s is not valid before %s", what, cert.NotBefore.UTC().Format(time.RFC3339))
	case left < c.warn:
		c.warnf("%s expires on %s, within %d days: renew it (update %s)", what, exp, int(c.warn.Hours()/24), key)
	default:
		c.ok("%s valid until %s", what, exp)
	}
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
