package authn

import "net/http"

type anonymous struct{}

var _ Authenticator = anonymous{}

// NewAnonymous returns the authenticator that accepts every request as
// system:anonymous in group system:unauthenticated. It never fails, so it
// belongs last in a chain: Build enforces that, and Union does not let it
// excuse an invalid credential presented for an earlier method.
func NewAnonymous() Authenticator { return anonymous{} }

func (anonymous) AuthenticateRequest(*http.Request) (User, bool, error) {
	return User{Name: AnonymousUser, Groups: []string{UnauthenticatedGroup}, Method: MethodAnonymous}, true, nil
}

func (anonymous) Method() string { return MethodAnonymous }

// Challenge is empty: there is nothing a client could send to become
// anonymous, so a 401 offers no challenge for it.
func (anonymous) Challenge() string { return "" }
