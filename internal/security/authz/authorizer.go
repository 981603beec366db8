package authz

import (
	"context"
	"fmt"
)

// Decision is an authorizer's answer. Deny is the zero value, so a
// Decision that was never set denies.
type Decision int

// The decisions an Authorizer can give.
const (
	// Deny forbids the request; a Union stops at it.
	Deny Decision = iota
	// Allow permits the request; a Union stops at it.
	Allow
	// NoOpinion leaves the request to the next authorizer of a Union.
	NoOpinion
)

// String returns "deny", "allow" or "no-opinion", the spelling used in
// audit records.
func (d Decision) String() string {
	switch d {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	case NoOpinion:
		return "no-opinion"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Verbs the REST API and the job manager ask about. Policies may also use
// VerbAny in rules.
const (
	VerbView   = "view"
	VerbList   = "list"
	VerbSubmit = "submit"
	VerbCancel = "cancel"
	// VerbSavepoint takes a savepoint of a job, or stops it with one
	// (POST /jobs/{id}/savepoints, POST /jobs/{id}/stop).
	VerbSavepoint = "savepoint"
	VerbAdmin     = "admin"
	VerbRead      = "read"  // a job reads a data resource
	VerbWrite     = "write" // a job writes a data resource
	VerbAny       = "*"     // policy rules only: every verb
)

// JobACL is what a job's submitter set: the owner and Spark's view and
// modify lists. Members of the modify list may also view.
type JobACL struct {
	Owner        string
	ViewUsers    []string
	ViewGroups   []string
	ModifyUsers  []string
	ModifyGroups []string
}

// DataAccess is one source or sink of a submitted job.
type DataAccess struct {
	// Verb is "read" or "write".
	Verb string `json:"verb"`
	// Resource names the data: "file:/srv/in/a", "kafka:topic/x",
	// "postgres:table/db.t", "socket:host:port".
	Resource string `json:"resource"`
}

// Attributes describe one request to authorize.
type Attributes struct {
	User   string
	Groups []string
	// Method is how the caller authenticated (x509, token, kerberos,
	// anonymous).
	Method string
	// Verb is one of view, list, submit, cancel, savepoint, admin, read, write.
	Verb string
	// Resource is "cluster", "taskmanagers", "config", "logs", "metrics",
	// "jobs", "job/<id>", "admin", or a data resource.
	Resource string
	// Job is set when Resource is job/<id>.
	Job *JobACL
	// Data is, for a submission, everything the job reads and writes.
	// Every entry must be allowed as well as Verb on Resource.
	Data []DataAccess

	// Where the request came from, for audit and for policies that
	// treat listeners differently.
	Listener, RemoteAddr, RequestID string
}

// Authorizer decides a request. The reason explains the decision to the
// caller and the audit log; it must never contain a secret. A non-nil
// error means the authorizer could not decide: callers answer 500 and
// never treat it as an allow.
type Authorizer interface {
	Authorize(ctx context.Context, a Attributes) (Decision, string, error)
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, a Attributes) (Decision, string, error)

var _ Authorizer = AuthorizerFunc(nil)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, a Attributes) (Decision, string, error) {
	return f(ctx, a)
}
