package authz

import "context"

// AllowAll returns an Authorizer that allows everything: the insecure
// default of security.authorization.mode, kept so a Flink-like setup works
// out of the box. The reason says why, so the audit log shows it.
func AllowAll() Authorizer {
	return AuthorizerFunc(func(context.Context, Attributes) (Decision, string, error) {
		return Allow, "security.authorization.mode is allow-all", nil
	})
}
