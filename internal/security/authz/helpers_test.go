package authz

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// examplePolicy is the policy of the brief, verbatim (examples/policy.yaml
// without its comments).
const examplePolicy = `super-users: [root]            # added to security.authorization.super-users
roles:
  developer:
    - verbs: [submit]
      resources: [jobs]
    - verbs: [view]
      resources: [cluster, taskmanagers]
    - verbs: [read]
      resources: ["file:/srv/in/*"]
    - verbs: [write]
      resources: ["file:/srv/out/${user}/*"]   # ${user}: the caller's user name
  viewer:
    - verbs: [view]
      resources: [cluster]
bindings:
  - role: developer
    users: [alice, bob]
  - role: viewer
    groups: [system:unauthenticated]
`

// fullPolicy is examplePolicy with more rules: job-scoped bindings, other
// data kinds, mid-pattern wildcards, ${user} bound through a group, and
// the "*" verb.
const fullPolicy = `super-users: [root]
roles:
  developer:
    - verbs: [submit]
      resources: [jobs]
    - verbs: [view]
      resources: [cluster, taskmanagers]
    - verbs: [read]
      resources: ["file:/srv/in/*"]
    - verbs: [write]
      resources: ["file:/srv/out/${user}/*"]
  viewer:
    - verbs: [view]
      resources: [cluster]
  job-admin:
    - verbs: [view, cancel]
      resources: ["job/*"]
    - verbs: [view]
      resources: [logs]
  own-jobs:
    - verbs: [cancel, view]
      resources: ["job/*"]
  streamer:
    - verbs: [read]
      resources: ["kafka:topic/logs-*", "kafka:topic/events"]
    - verbs: [write]
      resources: ["postgres:table/analytics.*"]
  segment:
    - verbs: [read]
      resources: ["file:/data/*/public/*"]
  auditor:
    - verbs: ["*"]
      resources: [logs]
    - verbs: [list]
      resources: [jobs]
  home:
    - verbs: [read, write]
      resources: ["file:/home/${user}/*"]
bindings:
  - role: developer
    users: [alice, bob]
  - role: viewer
    groups: [system:unauthenticated]
  - role: job-admin
    groups: [ops]
    job-owners: [carol]
  - role: own-jobs
    groups: [dev]
    job-owners: ["${user}"]
  - role: streamer
    users: [dave]
    groups: [etl]
  - role: segment
    users: [erin]
  - role: auditor
    groups: [audit]
  - role: home
    groups: [staff]
    users: [frank]
`

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func writePolicy(t testing.TB, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	return path
}

func newTestACL(t testing.TB, content string, superUsers ...string) *ACL {
	t.Helper()
	a, err := NewACL(writePolicy(t, t.TempDir(), content), superUsers, discardLog())
	if err != nil {
		t.Fatalf("NewACL: %v", err)
	}
	return a
}
