package authz

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestACLExamplePolicy(t *testing.T) {
	// The file shipped in examples/ must load as it is.
	a, err := NewACL(filepath.Join("..", "..", "..", "examples", "policy.yaml"), nil, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	want := withoutPlaces(newTestACL(t, examplePolicy).Policy())
	got := withoutPlaces(a.Policy())
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("examples/policy.yaml differs from the example policy:\n got %+v\nwant %+v", got, want)
	}
}

// withoutPlaces returns a copy of p without source and line numbers.
func withoutPlaces(p *Policy) Policy {
	c := Policy{SuperUsers: p.SuperUsers, Roles: map[string][]Rule{}}
	for name, rules := range p.Roles {
		for _, r := range rules {
			r.Line = 0
			c.Roles[name] = append(c.Roles[name], r)
		}
	}
	for _, b := range p.Bindings {
		b.Line = 0
		c.Bindings = append(c.Bindings, b)
	}
	return c
}

func TestACLDecisions(t *testing.T) {
	a := newTestACL(t, fullPolicy, "admin", " ")
	ctx := context.Background()
	job := func(owner string) *JobACL { return &JobACL{Owner: owner} }
	unauth := []string{"system:unauthenticated"}
	type tc struct {
		name     string
		user     string
		groups   []string
		verb     string
		resource string
		job      *JobACL
		data     []DataAccess
		want     Decision
		reason   string // substring of the reason
	}
	tests := []tc{
		// Example policy.
		{"developer submits", "alice", nil, "submit", "jobs", nil, nil, Allow, "alice may submit jobs: role developer"},
		{"developer views cluster", "bob", nil, "view", "cluster", nil, nil, Allow, "role developer"},
		{"developer views taskmanagers", "alice", nil, "view", "taskmanagers", nil, nil, Allow, ""},
		{"developer may not view config", "alice", nil, "view", "config", nil, nil, Deny, "no rule of the policy allows alice to view config"},
		{"developer may not cancel", "alice", nil, "cancel", "job/abc", job("alice"), nil, Deny, "alice to cancel job/abc"},
		{"developer reads input", "alice", nil, "read", "file:/srv/in/a", nil, nil, Allow, ""},
		{"trailing star crosses segments", "alice", nil, "read", "file:/srv/in/a/b/c", nil, nil, Allow, ""},
		{"input dir itself is not inside", "alice", nil, "read", "file:/srv/in", nil, nil, Deny, ""},
		{"input prefix is per segment", "alice", nil, "read", "file:/srv/input/a", nil, nil, Deny, ""},
		{"developer may not write input", "alice", nil, "write", "file:/srv/in/a", nil, nil, Deny, "alice to write file:/srv/in/a"},
		{"own output", "alice", nil, "write", "file:/srv/out/alice/x", nil, nil, Allow, ""},
		{"other's output", "alice", nil, "write", "file:/srv/out/bob/x", nil, nil, Deny, "no rule of the policy allows alice to write file:/srv/out/bob/x"},
		{"bob's output", "bob", nil, "write", "file:/srv/out/bob/x/y", nil, nil, Allow, ""},
		{"dotdot escapes input", "alice", nil, "read", "file:/srv/in/../etc/passwd", nil, nil, Deny, "file:/srv/in/../etc/passwd (/srv/etc/passwd)"},
		{"dotdot escapes own output", "alice", nil, "write", "file:/srv/out/alice/../bob/x", nil, nil, Deny, ""},
		{"dotdot staying inside", "alice", nil, "read", "file:/srv/in/a/../b", nil, nil, Allow, ""},
		{"doubled slashes cleaned", "alice", nil, "read", "file:/srv//in///a", nil, nil, Allow, ""},
		{"file URL with host", "alice", nil, "read", "file://srv/in/a", nil, nil, Deny, "not a local path"},
		{"file URL without host", "alice", nil, "read", "file:///srv/in/a", nil, nil, Allow, ""},
		{"anonymous views cluster", "system:anonymous", unauth, "view", "cluster", nil, nil, Allow, "role viewer"},
		{"anonymous may not submit", "system:anonymous", unauth, "submit", "jobs", nil, nil, Deny, "system:anonymous to submit jobs"},
		{"stranger denied", "mallory", nil, "view", "cluster", nil, nil, Deny, "no rule of the policy allows mallory to view cluster"},
		{"unknown verb denied", "alice", nil, "savepoint", "jobs", nil, nil, Deny, ""},
		{"empty verb denied", "alice", nil, "", "jobs", nil, nil, Deny, "no verb"},
		{"empty resource denied", "alice", nil, "view", "", nil, nil, Deny, "no verb or resource"},
		{"empty user denied", "", unauth, "view", "cluster", nil, nil, Deny, "no user"},
		{"user names are case sensitive", "Alice", nil, "submit", "jobs", nil, nil, Deny, ""},
		{"group name is not a user name", "system:unauthenticated", nil, "view", "cluster", nil, nil, Deny, ""},

		// Super users: from the file and from the configuration.
		{"file super user", "root", nil, "admin", "admin", nil, nil, Allow, "root is a super user"},
		{"file super user data", "root", nil, "write", "file:/etc/passwd", nil, nil, Allow, ""},
		{"config super user", "admin", nil, "cancel", "job/x", job("carol"), nil, Allow, "admin is a super user"},
		{"blank config super user ignored", " ", nil, "view", "cluster", nil, nil, Deny, ""},
		{"super user group is nothing", "eve", []string{"root"}, "view", "config", nil, nil, Deny, ""},

		// Submissions with data.
		{"submission with allowed data", "alice", nil, "submit", "jobs", nil, []DataAccess{
			{"read", "file:/srv/in/a"}, {"write", "file:/srv/out/alice/r"}}, Allow, "2 data accesses"},
		{"submission writing elsewhere", "alice", nil, "submit", "jobs", nil, []DataAccess{
			{"read", "file:/srv/in/a"}, {"write", "file:/srv/out/bob/r"}}, Deny, "no rule of the policy allows alice to write file:/srv/out/bob/r"},
		{"submission with bad data verb", "alice", nil, "submit", "jobs", nil, []DataAccess{{"submit", "file:/srv/in/a"}}, Deny, "want read or write"},
		{"submission reading kafka without rule", "alice", nil, "submit", "jobs", nil, []DataAccess{{"read", "kafka:topic/x"}}, Deny, "alice to read kafka:topic/x"},
		{"streamer may not submit", "dave", nil, "submit", "jobs", nil, []DataAccess{{"read", "kafka:topic/events"}}, Deny, "dave to submit jobs"},
		{"developer in etl submits kafka job", "alice", []string{"etl"}, "submit", "jobs", nil, []DataAccess{
			{"read", "kafka:topic/logs-web"}, {"write", "postgres:table/analytics.daily"}}, Allow, ""},

		// Other data kinds and prefixes.
		{"kafka exact", "dave", nil, "read", "kafka:topic/events", nil, nil, Allow, "role streamer"},
		{"kafka prefix", "dave", nil, "read", "kafka:topic/logs-web", nil, nil, Allow, ""},
		{"kafka prefix via group", "x", []string{"etl"}, "read", "kafka:topic/logs-", nil, nil, Allow, ""},
		{"kafka other topic", "dave", nil, "read", "kafka:topic/x", nil, nil, Deny, "dave to read kafka:topic/x"},
		{"kafka not a prefix of exact", "dave", nil, "read", "kafka:topic/events2", nil, nil, Deny, ""},
		{"kafka write", "dave", nil, "write", "kafka:topic/events", nil, nil, Deny, ""},
		{"kafka not cleaned", "dave", nil, "read", "kafka:topic/logs-/../x", nil, nil, Allow, ""},
		{"postgres prefix", "dave", nil, "write", "postgres:table/analytics.t", nil, nil, Allow, ""},
		{"postgres other db", "dave", nil, "write", "postgres:table/billing.t", nil, nil, Deny, ""},
		{"socket denied", "dave", nil, "read", "socket:host:9000", nil, nil, Deny, ""},

		// Mid-pattern wildcard: one segment only.
		{"segment star", "erin", nil, "read", "file:/data/sales/public/q1", nil, nil, Allow, "role segment"},
		{"segment star deeper", "erin", nil, "read", "file:/data/sales/public/q1/x", nil, nil, Allow, ""},
		{"segment star is one segment", "erin", nil, "read", "file:/data/a/b/public/q1", nil, nil, Deny, ""},
		{"segment star empty segment cleaned", "erin", nil, "read", "file:/data//public/q1", nil, nil, Deny, ""},
		{"segment star private", "erin", nil, "read", "file:/data/sales/private/q1", nil, nil, Deny, ""},
		{"segment star dotdot", "erin", nil, "read", "file:/data/sales/public/../private/q1", nil, nil, Deny, ""},

		// ${user} through a group, checked at decision time.
		{"home via group", "gina", []string{"staff"}, "write", "file:/home/gina/notes", nil, nil, Allow, "role home"},
		{"home via group other user", "gina", []string{"staff"}, "read", "file:/home/hank/notes", nil, nil, Deny, ""},
		{"home via user", "frank", nil, "read", "file:/home/frank/x", nil, nil, Allow, ""},
		{"home user prefix of other", "frank", nil, "read", "file:/home/frankie/x", nil, nil, Deny, ""},
		{"slash in user never expands", "a/b", []string{"staff"}, "read", "file:/home/a/b/x", nil, nil, Deny, ""},
		{"star user never expands", "*", []string{"staff"}, "read", "file:/home/*/x", nil, nil, Deny, ""},
		{"dotdot user never expands", "..", []string{"staff"}, "read", "file:/home/../x", nil, nil, Deny, ""},
		{"dot user never expands", ".", []string{"staff"}, "read", "file:/home/x", nil, nil, Deny, ""},

		// Job-scoped bindings.
		{"ops cancels carol's job", "oscar", []string{"ops"}, "cancel", "job/j1", job("carol"), nil, Allow, "role job-admin"},
		{"ops views carol's job", "oscar", []string{"ops"}, "view", "job/j1", job("carol"), nil, Allow, ""},
		{"ops may not cancel dan's job", "oscar", []string{"ops"}, "cancel", "job/j1", job("dan"), nil, Deny, "oscar to cancel job/j1"},
		{"ops without job owner", "oscar", []string{"ops"}, "cancel", "job/j1", nil, nil, Deny, ""},
		{"ops with empty job owner", "oscar", []string{"ops"}, "cancel", "job/j1", job(""), nil, Deny, ""},
		{"ops unscoped rule on logs", "oscar", []string{"ops"}, "view", "logs", nil, nil, Allow, ""},
		{"ops may not admin", "oscar", []string{"ops"}, "admin", "job/j1", job("carol"), nil, Deny, ""},
		{"dev cancels own job", "dan", []string{"dev"}, "cancel", "job/j2", job("dan"), nil, Allow, "role own-jobs"},
		{"dev may not cancel other's job", "dan", []string{"dev"}, "cancel", "job/j2", job("carol"), nil, Deny, ""},
		{"owner must be exact", "dan", []string{"dev"}, "cancel", "job/j2", job("Dan"), nil, Deny, ""},
		{"dev and ops together", "dan", []string{"dev", "ops"}, "cancel", "job/j2", job("carol"), nil, Allow, "job-admin"},

		// The "*" verb.
		{"auditor any verb on logs", "ida", []string{"audit"}, "admin", "logs", nil, nil, Allow, "role auditor"},
		{"auditor unknown verb on logs", "ida", []string{"audit"}, "savepoint", "logs", nil, nil, Allow, ""},
		{"auditor lists jobs", "ida", []string{"audit"}, "list", "jobs", nil, nil, Allow, ""},
		{"auditor may not submit", "ida", []string{"audit"}, "submit", "jobs", nil, nil, Deny, ""},
		{"auditor not on other resources", "ida", []string{"audit"}, "view", "logsx", nil, nil, Deny, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, reason, err := a.Authorize(ctx, Attributes{User: tt.user, Groups: tt.groups, Verb: tt.verb,
				Resource: tt.resource, Job: tt.job, Data: tt.data})
			if err != nil {
				t.Fatal(err)
			}
			if d != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("got %v %q, want %v containing %q", d, reason, tt.want, tt.reason)
			}
			if d == Deny && reason == "" {
				t.Error("a deny needs a reason")
			}
		})
	}
}

// TestACLMatrix checks the index against a plain reading of the policy
// over every combination of users, groups, verbs, resources and owners.
func TestACLMatrix(t *testing.T) {
	a := newTestACL(t, fullPolicy, "admin")
	p := a.Policy()
	users := []string{"alice", "bob", "carol", "dan", "dave", "erin", "frank", "root", "admin", "mallory", "a/b", "*", "..", "system:anonymous"}
	groupSets := [][]string{nil, {"ops"}, {"dev"}, {"etl"}, {"audit"}, {"staff"}, {"system:unauthenticated"}, {"ops", "dev", "staff"}, {"developer"}}
	verbs := append(slices.Clone(knownVerbs), "savepoint", "")
	resources := []string{"cluster", "taskmanagers", "config", "logs", "metrics", "jobs", "job/j", "admin", "",
		"file:/srv/in/a", "file:/srv/in", "file:/srv/in/../etc/passwd", "file:/srv/out/alice/r", "file:/srv/out/bob/r",
		"file:/srv/out/alice/../bob/r", "file:/home/frank/x", "file:/home/dan/x", "file:/home/a/b/x", "file:/home/*/x",
		"file:/home/../x", "file:/data/s/public/x", "file:/data/s/t/public/x", "kafka:topic/events", "kafka:topic/logs-1",
		"kafka:topic/x", "postgres:table/analytics.t", "socket:h:1", "file://srv/in/a", "*", "job/*"}
	owners := []*JobACL{nil, {Owner: "carol"}, {Owner: "dan"}, {Owner: "alice"}, {}}
	n, allowed := 0, 0
	for _, u := range users {
		for _, gs := range groupSets {
			for _, v := range verbs {
				for _, r := range resources {
					for _, j := range owners {
						if j != nil && !strings.HasPrefix(r, "job/") {
							continue
						}
						n++
						at := Attributes{User: u, Groups: gs, Verb: v, Resource: r, Job: j}
						got, reason, err := a.Authorize(context.Background(), at)
						want := naiveAllows(p, []string{"admin"}, at)
						if want {
							allowed++
						}
						if err != nil || (got == Allow) != want {
							t.Errorf("%+v: got %v %q %v, want allow=%v", at, got, reason, err, want)
						}
					}
				}
			}
		}
	}
	t.Logf("%d combinations, %d allowed", n, allowed)
	if allowed < 1000 || n-allowed < 1000 {
		t.Errorf("the matrix is lopsided: %d of %d allowed", allowed, n)
	}
}

// naiveAllows reads the policy rule by rule, without any index.
func naiveAllows(p *Policy, super []string, at Attributes) bool {
	if at.User == "" {
		return false
	}
	if slices.Contains(p.SuperUsers, at.User) || slices.Contains(super, at.User) {
		return true
	}
	res, ok := cleanResource(at.Resource)
	if !ok || at.Verb == "" || res == "" {
		return false
	}
	for _, b := range p.Bindings {
		if !slices.Contains(b.Users, at.User) && !slices.ContainsFunc(at.Groups, func(g string) bool { return slices.Contains(b.Groups, g) }) {
			continue
		}
		if b.JobOwners != nil && strings.HasPrefix(res, "job/") {
			if at.Job == nil || at.Job.Owner == "" {
				continue
			}
			if !slices.Contains(b.JobOwners, at.Job.Owner) && !(slices.Contains(b.JobOwners, "${user}") && at.Job.Owner == at.User) {
				continue
			}
		}
		for _, r := range p.Roles[b.Role] {
			if !slices.Contains(r.Verbs, at.Verb) && !slices.Contains(r.Verbs, "*") {
				continue
			}
			for _, pat := range r.Resources {
				want := pat
				if strings.Contains(pat, "${user}") {
					if at.User == "" || at.User == "." || at.User == ".." || strings.ContainsAny(at.User, "/*\x00") {
						continue
					}
					want = strings.ReplaceAll(pat, "${user}", at.User)
				}
				if globMatch(want, res) {
					return true
				}
			}
		}
	}
	return false
}

// globMatch is an independent matcher for the test: "*" at the end
// matches anything, elsewhere anything but "/".
func globMatch(pat, s string) bool {
	if pat == "" {
		return s == ""
	}
	if pat == "*" {
		return true
	}
	if pat[0] == '*' {
		for i := 0; i <= len(s); i++ {
			if globMatch(pat[1:], s[i:]) {
				return true
			}
			if i < len(s) && s[i] == '/' {
				return false
			}
		}
		return false
	}
	return s != "" && s[0] == pat[0] && globMatch(pat[1:], s[1:])
}

func TestNewACLErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewACL("", nil, nil); err == nil || !strings.Contains(err.Error(), PolicyFileKey) {
		t.Errorf("empty path: %v, want an error naming %s", err, PolicyFileKey)
	}
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := NewACL(missing, nil, nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("roles:\n  r:\n    - verbs: [sumbit]\n      resources: [jobs]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewACL(bad, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3") || !strings.Contains(err.Error(), `"sumbit"`) ||
		!strings.Contains(err.Error(), PolicyFileKey) {
		t.Errorf("bad file: %v, want path:line, the verb and the key", err)
	}
}
