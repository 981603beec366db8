package authz

import (
	"context"
	"testing"
)

func TestJobOwnership(t *testing.T) {
	job := &JobACL{
		Owner:        "alice",
		ViewUsers:    []string{"bob", "*"},
		ViewGroups:   []string{"readers"},
		ModifyUsers:  []string{"carol"},
		ModifyGroups: []string{"ops"},
	}
	tests := []struct {
		name, user string
		groups     []string
		verb, res  string
		job        *JobACL
		want       Decision
		reason     string
	}{
		{"owner views", "alice", nil, "view", "job/abc", job, Allow, "alice owns job abc"},
		{"owner cancels", "alice", nil, "cancel", "job/abc", job, Allow, "alice owns job abc"},
		{"owner takes savepoints", "alice", nil, "savepoint", "job/abc", job, Allow, "alice owns job abc"},
		{"modify group takes savepoints", "erin", []string{"ops"}, "savepoint", "job/abc", job, Allow, "erin is in group ops, on the modify list of job abc"},
		{"view user may not take savepoints", "bob", nil, "savepoint", "job/abc", job, NoOpinion, ""},
		{"owner may not admin", "alice", nil, "admin", "job/abc", job, NoOpinion, ""},
		{"owner other resource", "alice", nil, "view", "cluster", job, NoOpinion, ""},
		{"owner of jobs list", "alice", nil, "view", "jobs", job, NoOpinion, ""},
		{"view user views", "bob", nil, "view", "job/abc", job, Allow, "bob is on the view list of job abc"},
		{"view user may not cancel", "bob", nil, "cancel", "job/abc", job, NoOpinion, ""},
		{"view group views", "dan", []string{"x", "readers"}, "view", "job/abc", job, Allow, "dan is in group readers, on the view list of job abc"},
		{"view group may not cancel", "dan", []string{"readers"}, "cancel", "job/abc", job, NoOpinion, ""},
		{"modify user cancels", "carol", nil, "cancel", "job/abc", job, Allow, "carol is on the modify list of job abc"},
		{"modify user views", "carol", nil, "view", "job/abc", job, Allow, "carol is on the modify list of job abc"},
		{"modify group cancels", "erin", []string{"ops"}, "cancel", "job/abc", job, Allow, "erin is in group ops, on the modify list of job abc"},
		{"stranger", "mallory", []string{"dev"}, "view", "job/abc", job, NoOpinion, ""},
		{"star is not everyone", "mallory", nil, "view", "job/abc", &JobACL{Owner: "alice", ViewUsers: []string{"*"}}, NoOpinion, ""},
		{"literal star user", "*", nil, "view", "job/abc", job, Allow, "* is on the view list of job abc"},
		{"no job", "alice", nil, "view", "job/abc", nil, NoOpinion, ""},
		{"no job id", "alice", nil, "view", "job/", job, NoOpinion, ""},
		{"empty user and owner", "", nil, "view", "job/abc", &JobACL{}, NoOpinion, ""},
		{"empty group on list", "", []string{""}, "view", "job/abc", &JobACL{ViewGroups: []string{""}}, NoOpinion, ""},
		{"group name is not user", "ops", nil, "cancel", "job/abc", job, NoOpinion, ""},
		{"user name is not group", "x", []string{"alice"}, "cancel", "job/abc", job, NoOpinion, ""},
	}
	az := JobOwnership()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, reason, err := az.Authorize(context.Background(), Attributes{User: tt.user, Groups: tt.groups, Verb: tt.verb, Resource: tt.res, Job: tt.job})
			if err != nil || d != tt.want || reason != tt.reason {
				t.Errorf("got %v %q %v, want %v %q", d, reason, err, tt.want, tt.reason)
			}
		})
	}
}
