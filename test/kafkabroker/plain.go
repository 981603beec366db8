package main

import (
	"bytes"
	"crypto/subtle"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A wrong PLAIN password, like a wrong SCRAM one, must come back as
// SASL_AUTHENTICATION_FAILED (kfake closes the connection). The broker knows every PLAIN
// password, including the ones it made up for GSSAPI users (gssapi.go rewrites their final
// message into such a PLAIN login before this hook sees it).
func init() {
	register(installer{name: "plain", options: noOptions, hooks: installPLAIN})
}

func installPLAIN(cfg *Config, c *kfake.Cluster) error {
	if cfg.SASL == nil {
		return nil
	}
	passwords := map[string]string{}
	for _, u := range append(append([]User{}, cfg.SASL.Superusers...), cfg.SASL.Users...) {
		if u.Mechanism == "PLAIN" || u.Mechanism == "GSSAPI" {
			_, passwords[u.Name] = saslIdentity(cfg, u)
		}
	}
	if len(passwords) == 0 {
		return nil
	}
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.SASLAuthenticateRequest)
		parts := bytes.SplitN(req.SASLAuthBytes, []byte{0}, 3)
		if len(parts) != 3 || bytes.HasPrefix(req.SASLAuthBytes, []byte("n,")) {
			return nil, nil, false // not a PLAIN message
		}
		want, ok := passwords[string(parts[1])]
		if !ok {
			// delegation.go completes a token login as the token's owner with this password.
			want, ok = tokenOwnerPassword(string(parts[1]))
		}
		if !ok || subtle.ConstantTimeCompare([]byte(want), parts[2]) != 1 {
			return saslRefused(req, "PLAIN", "wrong user or password for "+string(parts[1]))
		}
		return nil, nil, false
	})
	return nil
}
