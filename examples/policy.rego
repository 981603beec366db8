# sluice authorization policy for Open Policy Agent (OPA 1.x, Rego v1).
#
# The rules of examples/policy.yaml (super user root; developers alice and
# bob; viewers: the group system:unauthenticated) plus job ownership, which
# the ACL mode leaves to the job-owner authorizer. Run OPA next to the job
# manager and point sluice at the decision document:
#
#   opa run --server --addr 127.0.0.1:8181 --skip-version-check policy.rego
#
#   security.authorization.mode: opa
#   security.authorization.opa.url: http://127.0.0.1:8181
#   security.authorization.opa.path: sluice/authz/decision
#
# The input is the request sluice asks about:
#
#   {"user": "alice", "groups": ["dev"], "verb": "submit",
#    "resource": {"kind": "jobs", "name": ""},        # job/<id>: {"kind": "job", "name": "<id>"}
#    "data": [{"verb": "read", "resource": {"kind": "file", "name": "/srv/in/a"}}],
#    "job": {"owner": "alice", "viewUsers": [], "viewGroups": [],   # only on job/<id>
#            "modifyUsers": [], "modifyGroups": []},
#    "listener": "public"}
#
# Nothing is allowed unless a rule allows it, and a submission needs every
# source and sink of the job allowed as well. File paths with "." or ".."
# segments are refused outright (the ACL cleans them; Rego cannot, so this
# policy is stricter rather than fooled by file:/srv/in/../etc/passwd).
package sluice.authz

default allow := false

# Users who may do everything.
super_users := {"root"}

bindings := [
	{"role": "developer", "users": {"alice", "bob"}, "groups": set()},
	{"role": "viewer", "users": set(), "groups": {"system:unauthenticated"}},
]

# Cluster resources each role may act on: role -> verb -> resource kinds
# (resources without a name: cluster, taskmanagers, jobs, ...).
grants := {
	"developer": {"submit": {"jobs"}, "view": {"cluster", "taskmanagers"}},
	"viewer": {"view": {"cluster"}},
}

roles contains b.role if {
	some b in bindings
	input.user in b.users
}

roles contains b.role if {
	some b in bindings
	some g in input.groups
	g in b.groups
}

# Why the verb on the resource is allowed; empty when it is not.
reasons contains sprintf("role %s lets %s %s %s", [r, input.user, input.verb, resource_text]) if {
	some r in roles
	input.resource.name == ""
	input.resource.kind in grants[r][input.verb]
}

reasons contains sprintf("%s owns job %s", [input.user, input.resource.name]) if {
	is_job
	input.verb in {"view", "cancel"}
	input.job.owner == input.user
}

reasons contains sprintf("%s is on the modify list of job %s", [input.user, input.resource.name]) if {
	is_job
	input.verb in {"view", "cancel"}
	input.user in input.job.modifyUsers
}

reasons contains sprintf("%s is in group %s, on the modify list of job %s", [input.user, g, input.resource.name]) if {
	is_job
	input.verb in {"view", "cancel"}
	some g in input.groups
	g in input.job.modifyGroups
}

reasons contains sprintf("%s is on the view list of job %s", [input.user, input.resource.name]) if {
	is_job
	input.verb == "view"
	input.user in input.job.viewUsers
}

reasons contains sprintf("%s is in group %s, on the view list of job %s", [input.user, g, input.resource.name]) if {
	is_job
	input.verb == "view"
	some g in input.groups
	g in input.job.viewGroups
}

# A request about one job that carries the job's ACL, from a named user:
# an empty user or owner must never match an empty list entry.
is_job if {
	input.resource.kind == "job"
	input.resource.name != ""
	input.user != ""
	is_object(input.job)
}

# Data a developer's job may touch: read anything under /srv/in/, write
# only under the developer's own /srv/out/<user>/.
data_allowed(d) if {
	"developer" in roles
	d.verb == "read"
	d.resource.kind == "file"
	under(d.resource.name, "/srv/in/")
}

data_allowed(d) if {
	"developer" in roles
	d.verb == "write"
	d.resource.kind == "file"
	plain_name(input.user)
	under(d.resource.name, sprintf("/srv/out/%s/", [input.user]))
}

under(path, dir) if {
	startswith(path, dir)
	count(path) > count(dir)
	not dot_segment(path)
}

dot_segment(path) if {
	some seg in split(path, "/")
	seg in {".", ".."}
}

# A user name usable inside a path (as the ACL's ${user}).
plain_name(u) if {
	u != ""
	not contains(u, "/")
	not contains(u, "*")
}

denied_data contains sprintf("%s %s:%s", [d.verb, d.resource.kind, d.resource.name]) if {
	some d in input.data
	not data_allowed(d)
}

allow if input.user in super_users

allow if {
	count(reasons) > 0
	count(denied_data) == 0
}

resource_text := sprintf("%s/%s", [input.resource.kind, input.resource.name]) if {
	input.resource.name != ""
} else := input.resource.kind

reason := sprintf("%s is a super user", [input.user]) if {
	input.user in super_users
} else := concat("; ", sort(reasons)) if {
	allow
} else := sprintf("%s may not %s", [input.user, concat(", ", sort(denied_data))]) if {
	count(reasons) > 0
} else := sprintf("no rule lets %s %s %s", [input.user, input.verb, resource_text])

# The document sluice queries (security.authorization.opa.path:
# sluice/authz/decision).
decision := {"allow": allow, "reason": reason}
