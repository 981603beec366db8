package authn

import "context"

// Names of the authentication methods, as listed in a listener's
// `authentication:` list and reported in User.Method.
const (
	MethodX509      = "x509"
	MethodToken     = "token"
	MethodKerberos  = "kerberos"
	MethodAnonymous = "anonymous"
)

// The identity given to requests that carry no credential on a listener
// that allows anonymous access. Kubernetes' names, so policies written for
// one read the same in the other.
const (
	AnonymousUser        = "system:anonymous"
	UnauthenticatedGroup = "system:unauthenticated"
)

// User is an authenticated caller.
type User struct {
	Name   string   `json:"username"`
	Groups []string `json:"groups"`
	// Method is how the caller authenticated: x509, token, kerberos or
	// anonymous. Authorization policies may treat them differently.
	Method string `json:"method"`
}

type userKey struct{}

// WithUser returns a copy of ctx that carries u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the User Filter put in ctx; ok is false when the
// request did not go through Filter, which handlers must treat as
// unauthenticated rather than as anonymous.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}
