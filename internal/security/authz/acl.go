package authz

import (
	"context"
	"fmt"
	"github.com/sluice-dev/sluice/internal/filewatch"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
)

// SuperUsersKey is the configuration key listing users who may do
// everything, in addition to the policy file's super-users.
const SuperUsersKey = "security.authorization.super-users"

// ACL authorizes against a policy file (see Policy) and reloads it when it
// changes: decisions made after a reload use the new policy, and a file
// that fails to load keeps the previous one.
type ACL struct {
	path       string
	superUsers []string
	log        *slog.Logger
	cur        atomic.Pointer[compiled]
	watch      filewatch.Watcher
}

var _ Authorizer = (*ACL)(nil)

// NewACL loads the policy file at path. superUsers (from
// security.authorization.super-users) may do everything, as may the
// file's super-users. Errors name the file, the line and the key.
func NewACL(path string, superUsers []string, log *slog.Logger) (*ACL, error) {
	if log == nil {
		log = slog.Default()
	}
	if path == "" {
		return nil, fmt.Errorf("security.authorization.mode includes acl but %s is not set; set it to a policy file (see examples/policy.yaml)", PolicyFileKey)
	}
	a := &ACL{path: path, superUsers: superUsers, log: log}
	a.watch = filewatch.Watcher{Path: path, Read: a.read, Apply: a.apply, Failed: a.fail}
	data, st, err := a.read()
	if err != nil {
		return nil, err
	}
	p, err := ParsePolicy(data, path)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, PolicyFileKey)
	}
	a.cur.Store(compile(p, superUsers))
	a.watch.Loaded(data, st)
	return a, nil
}

func (a *ACL) read() ([]byte, filewatch.Stat, error) {
	fi, err := os.Stat(a.path)
	if err != nil {
		return nil, filewatch.Stat{}, fmt.Errorf("authorization policy (%s): %w", PolicyFileKey, err)
	}
	st := filewatch.StatOf(fi)
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		// Not refused (a checkout with umask 002 would break every
		// example), but whoever can write the file can grant themselves
		// anything.
		a.log.Warn("authorization policy is writable by group or others, who can grant themselves any access; run chmod 644",
			"path", a.path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	data, err := readPolicyFile(a.path)
	return data, st, err
}

// Policy returns the policy in force.
func (a *ACL) Policy() *Policy { return a.cur.Load().policy }

// Run polls the file every 2 seconds until ctx is done: a changed mtime,
// size or mode makes it read the file, and changed content makes it
// reload ("authorization policy reloaded"). A file that fails to load
// (unparsable, unreadable, removed) keeps the previous policy, so a
// half-written edit never locks everyone out or lets everyone in; the
// reason is logged once per change.
func (a *ACL) Run(ctx context.Context) { a.watch.Run(ctx) }

// Reload reads the policy file now (POST /admin/reload) and returns why it
// was not applied; the previous policy stays in force then.
func (a *ACL) Reload() error { return a.watch.Reload() }

// apply installs a changed policy file.
func (a *ACL) apply(data []byte) error {
	p, err := ParsePolicy(data, a.path)
	if err != nil {
		return err
	}
	a.cur.Store(compile(p, a.superUsers))
	a.log.Info("authorization policy reloaded", "path", a.path, "roles", len(p.Roles), "bindings", len(p.Bindings))
	return nil
}

func (a *ACL) fail(err error) {
	a.log.Warn("authorization policy not reloaded; keeping the previous policy", "path", a.path, "err", err.Error())
}

// Authorize allows when the caller is a super user, or when a rule bound
// to the caller's name or one of its groups allows the verb on the
// resource and, for a submission, every data access (Attributes.Data)
// too.
//
// It never answers NoOpinion: when no rule allows, it denies, with a
// reason naming the user, the verb and the resource. The ACL is meant to
// be the last word, so authorizers after it in a Union are not asked;
// put JobOwnership (and anything else that should be able to allow)
// before it.
//
// File resources are cleaned before matching (path.Clean), so ".." cannot
// climb out of a pattern; symbolic links are not resolved, so the
// resource must name the path the connector opens.
func (a *ACL) Authorize(_ context.Context, at Attributes) (Decision, string, error) {
	c := a.cur.Load()
	return c.authorize(&at)
}

func (c *compiled) authorize(at *Attributes) (Decision, string, error) {
	src := c.policy.Source
	if at.User == "" {
		return Deny, "the request has no user", nil
	}
	if c.superUsers[at.User] {
		return Allow, at.User + " is a super user", nil
	}
	g, reason := c.check(at, at.Verb, at.Resource)
	if g == nil {
		return Deny, reason, nil
	}
	for _, d := range at.Data {
		if d.Verb != VerbRead && d.Verb != VerbWrite {
			return Deny, fmt.Sprintf("data access of %s has verb %q; want read or write", d.Resource, d.Verb), nil
		}
		if dg, reason := c.check(at, d.Verb, d.Resource); dg == nil {
			return Deny, reason, nil
		}
	}
	reason = fmt.Sprintf("%s may %s %s: %s", at.User, at.Verb, at.Resource, g.describe(src))
	if n := len(at.Data); n > 0 {
		reason += fmt.Sprintf("; and its %d data accesses are allowed", n)
	}
	return Allow, reason, nil
}

// check returns the grant that allows verb on resource, or nil and why
// not.
func (c *compiled) check(at *Attributes, verb, resource string) (*grant, string) {
	clean, ok := cleanResource(resource)
	if !ok {
		return nil, fmt.Sprintf("%s is not a local path; write file:/path", resource)
	}
	if verb == "" || clean == "" {
		return nil, fmt.Sprintf("the request to authorize has no verb or resource (verb %q, resource %q)", verb, resource)
	}
	if g := c.find(at.User, at.Groups, verb, clean, at.Job); g != nil {
		return g, ""
	}
	shown := resource
	if clean != resource {
		shown = fmt.Sprintf("%s (%s)", resource, strings.TrimPrefix(clean, "file:"))
	}
	return nil, fmt.Sprintf("no rule of the policy allows %s to %s %s", at.User, verb, shown)
}
