package kerberos

import (
	"fmt"
	"slices"
	"strings"
)

// explain turns a gokrb5 login error into one that says what went wrong
// and what to do. gokrb5 flattens KDC errors into text, so the KDC's error
// code names are matched in the message.
func (l *Login) explain(err error) error {
	msg := err.Error()
	has := func(s ...string) bool {
		return slices.ContainsFunc(s, func(x string) bool { return strings.Contains(msg, x) })
	}
	who := l.principal
	switch {
	case has("KDC_ERR_C_PRINCIPAL_UNKNOWN"):
		return fmt.Errorf("kerberos: the KDC of realm %s does not know principal %s: check %s (and the realm), or create the principal: %w",
			l.realm, who, KeyPrincipal, err)
	case has("KDC_ERR_PREAUTH_FAILED", "client password/keytab incorrect", "Decrypting_Error"):
		return fmt.Errorf("kerberos: the KDC refused the key of %s in keytab %s: the keytab is stale (the principal's key changed after it was exported) or belongs to another principal; export it again (kadmin: ktadd -k %s %s): %w",
			who, l.cfg.Keytab, l.cfg.Keytab, who, err)
	case has("Matching key not found in keytab"):
		return fmt.Errorf("kerberos: keytab %s holds no key of %s in an encryption type the KDC accepts: export it again with the realm's enctypes: %w",
			l.cfg.Keytab, who, err)
	case has("KDC_ERR_ETYPE_NOSUPP"):
		return fmt.Errorf("kerberos: the KDC supports none of the encryption types in krb5.conf %s (default_tkt_enctypes, permitted_enctypes) for %s: %w",
			l.krb5Path, who, err)
	case has("KRB_AP_ERR_SKEW"):
		return fmt.Errorf("kerberos: this machine's clock differs from the KDC's by more than the allowed skew: synchronize the clock (NTP): %w", err)
	case has("KDC_ERR_CLIENT_REVOKED"):
		return fmt.Errorf("kerberos: principal %s is disabled or locked out at the KDC: %w", who, err)
	case has("KDC_ERR_KEY_EXPIRED"):
		return fmt.Errorf("kerberos: the key (password) of %s has expired at the KDC: %w", who, err)
	case has("Networking_Error", "connection refused", "i/o timeout", "no KDC"):
		return fmt.Errorf("kerberos: cannot reach a KDC of realm %s (tried %s, from krb5.conf %s): is the KDC running and reachable, and is %s (or KRB5_CONFIG) right? %w",
			l.realm, l.kdcAddrs(), l.krb5Path, KeyKrb5Conf, err)
	}
	return fmt.Errorf("kerberos: login as %s failed: %w", who, err)
}

// kdcAddrs lists the KDC addresses krb5.conf gives for the realm.
func (l *Login) kdcAddrs() string {
	var addrs []string
	for _, tcp := range []bool{true, false} {
		_, kdcs, err := l.krb5.GetKDCs(l.realm, tcp)
		if err != nil {
			continue
		}
		for i := 1; i <= len(kdcs); i++ {
			if a, ok := kdcs[i]; ok && !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 {
		return "no KDC: krb5.conf lists none for the realm"
	}
	return strings.Join(addrs, ", ")
}
