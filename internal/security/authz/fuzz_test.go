package authz

import (
	"testing"
)

// FuzzParsePolicy feeds arbitrary bytes to ParsePolicy: it must never
// panic, and a policy it accepts must compile and decide without
// panicking.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		examplePolicy,
		fullPolicy,
		"roles: {}\n",
		"super-users: [root]\n",
		"roles:\n  r: &x\n    - verbs: [view]\n      resources: [\"a/*/b*\"]\n  s: *x\nbindings:\n  - role: s\n    groups: [g]\n    job-owners: [\"${user}\"]\n",
		"roles:\n  r:\n    - verbs: [\"*\"]\n      resources: [\"file:/${user}/*\", \"$\", \"${\"]\n",
		"a: &a [*a]\n",
		"- - - -\n",
		"{",
	} {
		f.Add([]byte(s))
	}
	ats := []Attributes{
		{User: "alice", Verb: "submit", Resource: "jobs", Data: []DataAccess{{"read", "file:/srv/in/../x"}, {"write", "file:/srv/out/alice/y"}}},
		{User: "u", Groups: []string{"g", "system:unauthenticated"}, Verb: "view", Resource: "a/x/b", Job: &JobACL{Owner: "u"}},
		{User: "..", Groups: []string{"g"}, Verb: "cancel", Resource: "job/1", Job: &JobACL{Owner: "carol"}},
		{User: "root", Verb: "admin", Resource: "admin"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data, "fuzz")
		if err != nil {
			if p != nil {
				t.Fatal("a policy with an error")
			}
			return
		}
		c := compile(p, []string{"admin"})
		for _, at := range ats {
			d, reason, err := c.authorize(&at)
			if err != nil || (d != Allow && d != Deny) || reason == "" {
				t.Fatalf("%+v: %v %q %v", at, d, reason, err)
			}
		}
	})
}
