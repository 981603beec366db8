package authz

import (
	"context"
	"fmt"
)

// Union asks its authorizers in order, like Kubernetes' union authorizer:
//
//   - the first Allow or Deny wins and the rest are not asked;
//   - NoOpinion passes the request on; when every authorizer has no
//     opinion the union denies, with the reason
//     "no authorizer allowed <verb> on <resource>", so a Union never
//     answers NoOpinion (a nested Union is final, too);
//   - an error stops the union and is returned with Deny: an authorizer
//     that cannot decide (a webhook that is down) must not let a later,
//     more permissive one decide instead.
type Union []Authorizer

var _ Authorizer = Union(nil)

// Authorize asks the authorizers in order; see Union.
func (u Union) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	d, reason, _, err := u.AuthorizeNamed(ctx, a)
	return d, reason, err
}

// AuthorizeNamed is Authorize that also reports which authorizer decided
// (or failed), by the name given to Named, for the audit log. An
// authorizer without a name is reported by its index ("#1"). by is ""
// when no authorizer had an opinion.
func (u Union) AuthorizeNamed(ctx context.Context, a Attributes) (d Decision, reason string, by string, err error) {
	for i, az := range u {
		name := authorizerName(az, i)
		if az == nil {
			return Deny, "", name, fmt.Errorf("authorizer %s is nil", name)
		}
		if n, ok := az.(*named); ok && n.Authorizer == nil {
			return Deny, "", name, fmt.Errorf("authorizer %s is nil", name)
		}
		d, reason, err := az.Authorize(ctx, a)
		if err != nil {
			return Deny, reason, name, fmt.Errorf("authorizer %s: %w", name, err)
		}
		switch d {
		case Allow, Deny:
			return d, reason, name, nil
		case NoOpinion:
		default:
			// A broken authorizer fails closed instead of being read as
			// whatever its number happens to mean.
			return Deny, "", name, fmt.Errorf("authorizer %s returned unknown %v", name, d)
		}
	}
	return Deny, fmt.Sprintf("no authorizer allowed %s on %s", a.Verb, a.Resource), "", nil
}

// Named gives an authorizer a name for the audit log ("acl", "webhook",
// "opa", "allow-all", "job-owner"); a Union reports it from
// AuthorizeNamed. The name changes nothing else.
func Named(name string, a Authorizer) Authorizer {
	return &named{name: name, Authorizer: a}
}

type named struct {
	name string
	Authorizer
}

// Name returns the name given to Named.
func (n *named) Name() string { return n.name }

func authorizerName(a Authorizer, i int) string {
	if n, ok := a.(interface{ Name() string }); ok && n.Name() != "" {
		return n.Name()
	}
	return fmt.Sprintf("#%d", i)
}
