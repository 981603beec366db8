package webhook

import (
	"strings"

	"github.com/sluice-dev/sluice/internal/security/authz"
)

// APIVersion and Kind identify the request and response documents.
const (
	APIVersion = "sluice.authorization/v1"
	Kind       = "AccessReview"
)

// AccessReview is the document POSTed to the webhook, and (with Status
// filled in) the document it answers with. It mirrors Kubernetes'
// SubjectAccessReview so existing policy services adapt easily.
type AccessReview struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Spec       *Spec         `json:"spec,omitempty"`
	Status     *ReviewStatus `json:"status,omitempty"`
}

// ReviewStatus is the webhook's answer. Allowed and Denied both false
// means "no opinion"; both true is treated as a deny.
type ReviewStatus struct {
	Allowed bool   `json:"allowed"`
	Denied  bool   `json:"denied,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Spec describes the request to authorize. It is also the input document
// of the OPA authorizer, so one policy vocabulary serves both.
//
// Field order is fixed by the struct, and lists are kept in the caller's
// order, so the encoding is canonical and serves as the cache key.
type Spec struct {
	User     string       `json:"user"`
	Groups   []string     `json:"groups"`
	Verb     string       `json:"verb"`
	Resource Resource     `json:"resource"`
	Data     []DataAccess `json:"data"`
	Job      *Job         `json:"job,omitempty"`
	Listener string       `json:"listener,omitempty"`
}

// Resource is a resource split into kind and name at its first "/" or
// ":": "job/abc" is {job, abc}, "cluster" is {cluster, ""}, "file:/srv/in"
// is {file, /srv/in}, "kafka:topic/x" is {kafka, topic/x}. Splitting
// spares every policy from parsing strings.
type Resource struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// DataAccess is data a submitted job reads or writes.
type DataAccess struct {
	Verb     string   `json:"verb"`
	Resource Resource `json:"resource"`
}

// Job is the access control list of the job the request is about, so a
// policy can grant owners and listed users rights without a lookup.
type Job struct {
	Owner        string   `json:"owner"`
	ViewUsers    []string `json:"viewUsers"`
	ViewGroups   []string `json:"viewGroups"`
	ModifyUsers  []string `json:"modifyUsers"`
	ModifyGroups []string `json:"modifyGroups"`
}

// SpecFor builds the Spec of a request. Lists are never null, so a policy
// can iterate them without checking for absence.
func SpecFor(a authz.Attributes) *Spec {
	s := &Spec{
		User:     a.User,
		Groups:   nonNil(a.Groups),
		Verb:     a.Verb,
		Resource: splitResource(a.Resource),
		Data:     make([]DataAccess, 0, len(a.Data)),
		Listener: a.Listener,
	}
	for _, d := range a.Data {
		s.Data = append(s.Data, DataAccess{Verb: d.Verb, Resource: splitResource(d.Resource)})
	}
	if j := a.Job; j != nil {
		s.Job = &Job{
			Owner:        j.Owner,
			ViewUsers:    nonNil(j.ViewUsers),
			ViewGroups:   nonNil(j.ViewGroups),
			ModifyUsers:  nonNil(j.ModifyUsers),
			ModifyGroups: nonNil(j.ModifyGroups),
		}
	}
	return s
}

// splitResource splits at the first "/" (cluster resources: job/<id>) or
// ":" (data resources: file:/path, kafka:topic/t), whichever comes first;
// the name may itself contain either ("socket:host:9000", "file:/a/b").
func splitResource(r string) Resource {
	i := strings.IndexAny(r, "/:")
	if i < 0 {
		return Resource{Kind: r}
	}
	return Resource{Kind: r[:i], Name: r[i+1:]}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
