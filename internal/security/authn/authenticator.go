package authn

import "net/http"

// Authenticator authenticates one request by one method.
//
// AuthenticateRequest returns:
//   - ok=true: the request proved it is u;
//   - ok=false, err=nil: the request carries no credential for this method;
//   - ok=false, err!=nil: a credential was presented and is invalid. This is
//     a 401 even where anonymous access is allowed. err's message is shown
//     to the client and logged, so it must never contain the credential.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (u User, ok bool, err error)
	// Method is the method name: x509, token, kerberos or anonymous.
	Method() string
	// Challenge is the WWW-Authenticate challenge of the method, or "" when
	// the method has nothing to ask of the client (anonymous).
	Challenge() string
}

// AuthenticatorFunc adapts a function to Authenticator, for tests and for
// methods whose state lives elsewhere (a Kerberos acceptor).
type AuthenticatorFunc struct {
	Name            string // returned by Method
	WWWAuthenticate string // returned by Challenge
	Func            func(r *http.Request) (User, bool, error)
}

var _ Authenticator = AuthenticatorFunc{}

// AuthenticateRequest calls f.Func.
func (f AuthenticatorFunc) AuthenticateRequest(r *http.Request) (User, bool, error) {
	return f.Func(r)
}

// Method returns f.Name.
func (f AuthenticatorFunc) Method() string { return f.Name }

// Challenge returns f.WWWAuthenticate.
func (f AuthenticatorFunc) Challenge() string { return f.WWWAuthenticate }
