// Package authn authenticates REST requests: a chain of authenticators
// (client certificate, bearer token, Kerberos, anonymous) tried in order,
// shaped after Kubernetes' k8s.io/apiserver authentication union.
//
// The chain runs in Filter, which puts the authenticated User in the
// request context for the authorizer and the handlers, and answers 401
// with the challenges of the listener's methods, or 429 to a client
// address that failed too often.
package authn
