package authn

import (
	"net/http"
	"slices"
	"strings"
)

// Union is a chain of authenticators, itself an Authenticator. It follows
// Kubernetes' union with anonymous added by NewFailOnError:
//
//   - the authenticators are tried in order and the first success wins, so
//     a valid client certificate is accepted even if the same request also
//     carries a bad bearer token (any proven identity is a real identity);
//   - if none succeeded and any returned an error, the first error is
//     returned: an invalid credential is a 401, never "no credential";
//   - anonymous never excuses an error: once an earlier authenticator has
//     rejected a credential, an anonymous success is not taken, so a client
//     with a wrong or revoked token gets 401 instead of silently becoming
//     system:anonymous with fewer rights and a confusing 403 later.
type Union []Authenticator

var _ Authenticator = Union(nil)

// AuthenticateRequest tries each authenticator in order.
func (u Union) AuthenticateRequest(r *http.Request) (User, bool, error) {
	var first error
	for _, a := range u {
		if first != nil && a.Method() == MethodAnonymous {
			break
		}
		usr, ok, err := a.AuthenticateRequest(r)
		if ok {
			return usr, true, nil
		}
		if err != nil && first == nil {
			first = err
			if _, nested := err.(*methodError); !nested {
				first = &methodError{method: a.Method(), err: err}
			}
		}
	}
	return User{}, false, first
}

// Method returns the methods of the chain, comma separated, as shown in
// "this listener accepts: token, x509".
func (u Union) Method() string { return strings.Join(u.Methods(), ", ") }

// Methods returns the method names of the chain in order, nested unions
// flattened.
func (u Union) Methods() []string {
	var ms []string
	for _, a := range u {
		if n, ok := a.(Union); ok {
			ms = append(ms, n.Methods()...)
			continue
		}
		ms = append(ms, a.Method())
	}
	return ms
}

// Challenge returns "": a union offers several challenges, one
// WWW-Authenticate header each (see Challenges), which one string cannot
// carry without losing the one-header-per-method form clients parse best.
func (u Union) Challenge() string { return "" }

// Challenges returns the non-empty challenges of the chain in order, each
// once: two methods of one scheme (job tokens and the token file both take
// bearer tokens) are one challenge to a client, and a repeated
// WWW-Authenticate header only makes it guess whether they differ.
func (u Union) Challenges() []string {
	var cs []string
	for _, a := range u {
		var more []string
		if n, ok := a.(Union); ok {
			more = n.Challenges()
		} else if c := a.Challenge(); c != "" {
			more = []string{c}
		}
		for _, c := range more {
			if !slices.Contains(cs, c) {
				cs = append(cs, c)
			}
		}
	}
	return cs
}

// methodError remembers which method rejected the credential, for the log,
// while its message stays the method's own (shown to the client).
type methodError struct {
	method string
	err    error
}

func (e *methodError) Error() string { return e.err.Error() }
func (e *methodError) Unwrap() error { return e.err }
