package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// JobOwnership returns an Authorizer for the lists a job's submitter set
// (Spark's spark.acls: owner, view and modify lists). On job/<id>:
//
//   - the owner and members of the modify list (by user or group) may view,
//     cancel and take savepoints (stopping with one ends the job, as a
//     cancel does);
//   - members of the view list may view.
//
// Everything else, and every other resource, is NoOpinion, so a later
// authorizer (the ACL's cluster-wide roles) can still allow it. The
// lists have no wildcards: "*" is an ordinary name, so a submitter cannot
// open a job to everyone. An empty user or owner never matches.
func JobOwnership() Authorizer {
	return AuthorizerFunc(jobOwnership)
}

func jobOwnership(_ context.Context, a Attributes) (Decision, string, error) {
	id, ok := strings.CutPrefix(a.Resource, "job/")
	if !ok || id == "" || a.Job == nil || a.User == "" {
		return NoOpinion, "", nil
	}
	if a.Verb != VerbView && a.Verb != VerbCancel && a.Verb != VerbSavepoint {
		return NoOpinion, "", nil
	}
	j := a.Job
	if j.Owner == a.User {
		return Allow, fmt.Sprintf("%s owns job %s", a.User, id), nil
	}
	if slices.Contains(j.ModifyUsers, a.User) {
		return Allow, fmt.Sprintf("%s is on the modify list of job %s", a.User, id), nil
	}
	if g, ok := memberOf(a.Groups, j.ModifyGroups); ok {
		return Allow, fmt.Sprintf("%s is in group %s, on the modify list of job %s", a.User, g, id), nil
	}
	if a.Verb != VerbView {
		return NoOpinion, "", nil
	}
	if slices.Contains(j.ViewUsers, a.User) {
		return Allow, fmt.Sprintf("%s is on the view list of job %s", a.User, id), nil
	}
	if g, ok := memberOf(a.Groups, j.ViewGroups); ok {
		return Allow, fmt.Sprintf("%s is in group %s, on the view list of job %s", a.User, g, id), nil
	}
	return NoOpinion, "", nil
}

// memberOf returns the first of groups that is listed.
func memberOf(groups, listed []string) (string, bool) {
	for _, g := range groups {
		if g != "" && slices.Contains(listed, g) {
			return g, true
		}
	}
	return "", false
}
