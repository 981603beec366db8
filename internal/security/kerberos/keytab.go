package kerberos

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/sluice-dev/sluice/internal/security/filemode"
)

// CheckKeytabFile refuses a keytab that group or others can read (or
// write): whoever reads it can act as its principals. allowInsecure
// (security.kerberos.login.allow-insecure-keytab) turns the check off.
func CheckKeytabFile(path string, allowInsecure bool) error {
	return CheckKeytabFileFor(KeyKeytab, path, allowInsecure)
}

// CheckKeytabFileFor is CheckKeytabFile for a keytab another key names
// (the REST acceptor's security.rest.authentication.kerberos.keytab): its
// errors name that key.
func CheckKeytabFileFor(key, path string, allowInsecure bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("kerberos: keytab %s (%s): %w", path, key, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("kerberos: keytab %s (%s) is not a regular file", path, key)
	}
	if perm := fi.Mode().Perm(); !filemode.Private(path, fi) && !allowInsecure {
		return fmt.Errorf("kerberos: keytab %s (%s) has mode %04o: group or others can use its keys; run chmod 600 %s, or set %s: true to accept it (%s)",
			path, key, perm, path, KeyAllowInsecureKeytab, filemode.Hint)
	}
	return nil
}

// keytabPrincipals lists the distinct principals a keytab holds keys for,
// as name@REALM.
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

// loadKeytab loads a keytab and checks that it holds a key for principal.
func loadKeytab(path, principal string) (*keytab.Keytab, error) {
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, fmt.Errorf("kerberos: load keytab %s (%s): %w", path, KeyKeytab, err)
	}
	held := keytabPrincipals(kt)
	if !slices.Contains(held, principal) {
		list := strings.Join(held, ", ")
		if list == "" {
			list = "none"
		}
		return nil, fmt.Errorf("kerberos: keytab %s holds no key for %s (%s); it holds keys for: %s. Export the principal's keys into it (kadmin: ktadd -k %s %s) or fix %s",
			path, principal, KeyPrincipal, list, path, principal, KeyPrincipal)
	}
	return kt, nil
}
