package authn

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

var knownMethods = []string{MethodX509, MethodToken, MethodKerberos, MethodAnonymous}

// KnownMethods returns the methods a listener's `authentication:` list may
// name, in the order they are usually listed (a copy: callers may sort it).
func KnownMethods() []string { return slices.Clone(knownMethods) }

// Deps are the configured authenticators Build picks from. A nil field is
// a method that is not configured.
type Deps struct {
	X509     Authenticator // NewX509, on a listener with client certificates
	Token    Authenticator // a *TokenFile
	Kerberos Authenticator // SPNEGO, from NewKerberos
}

// Build assembles a listener's chain from its `authentication:` list, in
// the listed order. Unknown and duplicate methods are errors, as is a
// method without its building block, and anonymous anywhere but last:
// it accepts every request, so methods after it would never run.
func Build(methods []string, d Deps) (Union, error) {
	if len(methods) == 0 {
		return nil, fmt.Errorf("no authentication methods: list at least one of %s (anonymous allows unauthenticated access)",
			strings.Join(knownMethods, ", "))
	}
	var chain Union
	var seen []string
	for i, raw := range methods {
		m := strings.ToLower(strings.TrimSpace(raw))
		if !slices.Contains(knownMethods, m) {
			return nil, fmt.Errorf("unknown authentication method %q: known methods are %s", raw, strings.Join(knownMethods, ", "))
		}
		if slices.Contains(seen, m) {
			return nil, fmt.Errorf("authentication method %q is listed twice", m)
		}
		seen = append(seen, m)
		var a Authenticator
		switch m {
		case MethodX509:
			if a = d.X509; a == nil {
				return nil, errors.New("x509 authentication needs TLS with client certificates on the listener")
			}
		case MethodToken:
			if a = d.Token; a == nil {
				return nil, fmt.Errorf("token authentication needs a token file: set %s", TokenFileKey)
			}
		case MethodKerberos:
			if a = d.Kerberos; a == nil {
				return nil, fmt.Errorf("kerberos authentication needs the service keytab and principal: set %s and %s", KerberosKeytabKey, KerberosPrincipalKey)
			}
		case MethodAnonymous:
			if i != len(methods)-1 {
				return nil, errors.New("anonymous must be the last authentication method: it accepts every request, so the methods after it would never run")
			}
			a = NewAnonymous()
		}
		chain = append(chain, a)
	}
	return chain, nil
}
