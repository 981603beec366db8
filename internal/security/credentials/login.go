package credentials

import (
	"context"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
)

// FromLogin serves the Kerberos client of a process's login (nil: none) to the services whose
// login context is in LoginContexts. A context not named in security.kerberos.login.contexts
// is refused with the login's error, which names the key.
func FromLogin(l *kerberos.Login) Source {
	return Func(func(_ context.Context, service string) (any, error) {
		lc, ok := LoginContexts[service]
		if !ok || l == nil {
			return nil, fmt.Errorf("%w: %s (no Kerberos login on this process: set security.kerberos.login.keytab and .principal, or security.kerberos.login.use-ticket-cache)", ErrNone, service)
		}
		if _, err := l.Client(lc); err != nil {
			return nil, err
		}
		conf, _ := l.Krb5Conf()
		return &Kerberos{Context: lc, Principal: l.Principal(), Config: conf,
			Client: func() (*client.Client, error) { return l.Client(lc) }}, nil
	})
}
