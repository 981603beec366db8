// Package authz decides whether an authenticated caller may do something,
// shaped after Kubernetes' k8s.io/apiserver authorizer: an Authorizer
// answers Allow, Deny or NoOpinion with a reason, a Union asks several in
// order and takes the first definite answer, and an error is never an
// allow (the REST filter answers 500).
//
// The built-in authorizers are AllowAll (the insecure default of
// security.authorization.mode), JobOwnership (a job's owner and the
// view/modify lists its submitter set, as in Spark) and ACL (a YAML policy
// file of roles and bindings, reloaded when it changes). The webhook and
// OPA authorizers live in their own sub-packages.
//
// A typical chain for mode "acl" is
//
//	authz.Union{
//		authz.Named("job-owner", authz.JobOwnership()),
//		authz.Named("acl", acl),
//	}
//
// JobOwnership comes first because it answers NoOpinion for everything it
// does not allow, while the ACL answers Deny when no rule matches (its
// default deny is final, see ACL.Authorize).
package authz
