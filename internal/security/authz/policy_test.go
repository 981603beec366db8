package authz

import (
	"strings"
	"testing"
)

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // substring, including "src:line" where known
	}{
		{"empty", "", "policy is empty"},
		{"null", "~\n", "policy is empty"},
		{"comments only", "# nothing\n", "policy is empty"},
		{"not a mapping", "- a\n", "policy must be a mapping"},
		{"syntax", "roles: [\n", "src:"},
		{"two documents", "roles: {}\n---\nroles: {}\n", "src:2: more than one YAML document"},
		{"unknown top key", "roles: {}\nsuperusers: [x]\n", `src:2: unknown key "superusers"`},
		{"duplicate key", "roles: {}\nroles: {}\n", `src:2: policy: "roles" is given twice`},
		{"unknown verb", "roles:\n  r:\n    - verbs: [view, sumbit]\n      resources: [jobs]\n", `src:3: role "r" rule: unknown verb "sumbit"`},
		{"unknown verb line in block list", "roles:\n  r:\n    - verbs:\n        - view\n        - delete\n      resources: [jobs]\n", `src:5: role "r" rule: unknown verb "delete"`},
		{"rule without verbs", "roles:\n  r:\n    - resources: [jobs]\n", `src:3: role "r" rule has no verbs`},
		{"rule with empty verbs", "roles:\n  r:\n    - verbs: []\n      resources: [jobs]\n", `src:3: role "r" rule has no verbs`},
		{"rule without resources", "roles:\n  r:\n    - verbs: [view]\n", `src:3: role "r" rule has no resources`},
		{"verbs not a list", "roles:\n  r:\n    - verbs: view\n      resources: [jobs]\n", "must be a list"},
		{"unknown rule key", "roles:\n  r:\n    - verbs: [view]\n      resource: [jobs]\n", `src:4: role "r" rule: unknown key "resource"`},
		{"empty role", "roles:\n  r: []\n", `role "r" must be a non-empty list`},
		{"empty resource", "roles:\n  r:\n    - verbs: [view]\n      resources: [\"\"]\n", "empty entry"},
		{"null resource", "roles:\n  r:\n    - verbs: [view]\n      resources: [~]\n", "entries must be strings"},
		{"double star", "roles:\n  r:\n    - verbs: [read]\n      resources: [\"file:/a/**\"]\n", `"**" is not supported`},
		{"unknown variable", "roles:\n  r:\n    - verbs: [read]\n      resources: [\"file:/a/${group}/*\"]\n", "only variable is ${user}"},
		{"unclean file pattern", "roles:\n  r:\n    - verbs: [read]\n      resources: [\"file:/srv/../etc/*\"]\n", `write "file:/etc/*"`},
		{"relative file pattern", "roles:\n  r:\n    - verbs: [read]\n      resources: [\"file:srv/*\"]\n", "absolute"},
		{"file pattern ending in slash", "roles:\n  r:\n    - verbs: [read]\n      resources: [\"file:/srv/\"]\n", `write "file:/srv/*"`},
		{"too many stars", "roles:\n  r:\n    - verbs: [read]\n      resources: [\"a*b*c*d*e*f*g*h*i*j\"]\n", "too many wildcards"},
		{"unknown role", "roles:\n  r:\n    - verbs: [view]\n      resources: [cluster]\nbindings:\n  - role: s\n    users: [a]\n", `src:6: binding: unknown role "s"`},
		{"binding before roles still checked", "bindings:\n  - role: s\n    users: [a]\nroles: {}\n", `src:2: binding: unknown role "s"`},
		{"binding without role", "roles: {}\nbindings:\n  - users: [a]\n", "src:3: binding has no role"},
		{"binding to nobody", "roles:\n  r:\n    - verbs: [view]\n      resources: [cluster]\nbindings:\n  - role: r\n", `src:6: binding of role "r" names no users or groups`},
		{"binding unknown key", "roles: {}\nbindings:\n  - role: r\n    user: [a]\n", `src:4: binding: unknown key "user"`},
		{"wildcard user", "roles:\n  r:\n    - verbs: [view]\n      resources: [cluster]\nbindings:\n  - role: r\n    users: [\"*\"]\n", "no wildcards"},
		{"variable group", "roles:\n  r:\n    - verbs: [view]\n      resources: [cluster]\nbindings:\n  - role: r\n    groups: [\"${user}\"]\n", "no wildcards"},
		{"empty job-owners", "roles:\n  r:\n    - verbs: [view]\n      resources: [cluster]\nbindings:\n  - role: r\n    users: [a]\n    job-owners: []\n", "src:8: binding job-owners is empty"},
		{"wildcard job-owner", "roles:\n  r:\n    - verbs: [view]\n      resources: [cluster]\nbindings:\n  - role: r\n    users: [a]\n    job-owners: [\"*\"]\n", "no wildcards"},
		{"wildcard super user", "super-users: [\"*\"]\n", "no wildcards"},
		{"bindings not a list", "roles: {}\nbindings: {a: b}\n", "bindings must be a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.yaml), "src")
			if err == nil {
				t.Fatalf("no error; policy %+v", p)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParsePolicyAccepts(t *testing.T) {
	for _, src := range []string{
		"roles: {}\n",
		"super-users: [root]\n",
		"roles:\n  r: &rules\n    - verbs: [view]\n      resources: [cluster]\n  s: *rules\nbindings:\n  - role: s\n    users: [a]\n",
		"roles:\n  r:\n    - verbs: [read]\n      resources: [\"file:/*\", \"file:*\", \"*\", \"file:/srv/in*\", \"cost$\", \"file:${user}/x\"]\n",
		"roles:\n  r:\n    - verbs: [view]\n      resources: [cluster]\nbindings:\n  - role: r\n    users: [1234]\n",
		examplePolicy,
		fullPolicy,
	} {
		if _, err := ParsePolicy([]byte(src), "src"); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestLoadPolicyNamesPath(t *testing.T) {
	path := writePolicy(t, t.TempDir(), "roles:\n  r:\n    - verbs: [bogus]\n      resources: [x]\n")
	_, err := LoadPolicy(path)
	if err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Errorf("got %v, want an error naming %s:3", err, path)
	}
	p, err := LoadPolicy(writePolicy(t, t.TempDir(), examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Roles) != 2 || len(p.Bindings) != 2 || p.Roles["developer"][3].Line != 10 {
		t.Errorf("unexpected policy %+v", p)
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pat, res, user string
		want           bool
	}{
		{"job/*", "job/abc", "", true},
		{"job/*", "job/a/b", "", true},
		{"job/*", "jobs", "", false},
		{"*", "anything/at:all", "", true},
		{"kafka:topic/logs-*", "kafka:topic/logs-", "", true},
		{"kafka:topic/logs-*", "kafka:topic/log", "", false},
		{"a/*/c", "a/b/c", "", true},
		{"a/*/c", "a//c", "", true},
		{"a/*/c", "a/b/b/c", "", false},
		{"a/*x/c", "a/yyx/c", "", true},
		{"a/*x/c", "a/yyx/d/c", "", false},
		{"file:/srv/out/${user}/*", "file:/srv/out/al/x", "al", true},
		{"file:/srv/out/${user}/*", "file:/srv/out/al/x", "alice", false},
		{"file:/srv/out/${user}/*", "file:/srv/out/alice/x", "al", false},
		{"p-${user}", "p-u", "u", true},
		{"p-${user}", "p-uu", "u", false},
		{"cost$", "cost$", "", true},
	}
	for _, tt := range tests {
		p, err := parsePattern(tt.pat)
		if err != nil {
			t.Fatalf("%s: %v", tt.pat, err)
		}
		if got := p.match(tt.res, tt.user); got != tt.want {
			t.Errorf("%q matching %q as %q: got %v", tt.pat, tt.res, tt.user, got)
		}
		if got := globMatch(strings.ReplaceAll(tt.pat, "${user}", tt.user), tt.res); got != tt.want {
			t.Errorf("test matcher disagrees on %q %q", tt.pat, tt.res)
		}
	}
}
