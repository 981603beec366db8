package authz

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PolicyFileKey is the configuration key naming the ACL policy file.
const PolicyFileKey = "security.authorization.acl.policy-file"

// maxPolicySize bounds what a load reads, so a wrong path (a log file, a
// device) cannot exhaust memory.
const maxPolicySize = 16 << 20

// Policy is a parsed ACL policy file:
//
//	super-users: [root]
//	roles:
//	  developer:
//	    - verbs: [submit]
//	      resources: [jobs]
//	bindings:
//	  - role: developer
//	    users: [alice]
//	    groups: [dev]
//	    job-owners: [carol, "${user}"]  # optional
//
// See examples/policy.yaml for the full syntax.
type Policy struct {
	// Source is the file the policy came from, for messages.
	Source string
	// SuperUsers may do everything.
	SuperUsers []string
	// Roles maps a role name to its rules.
	Roles map[string][]Rule
	// Bindings give roles to users and groups.
	Bindings []Binding
}

// Rule allows its verbs on its resources.
type Rule struct {
	// Verbs are view, list, submit, cancel, savepoint, admin, read, write or "*".
	Verbs []string
	// Resources are exact names or patterns: "*" matches within one path
	// segment, a trailing "*" matches the rest (across "/"), and ${user}
	// is the caller's name.
	Resources []string
	// Line is where the rule starts in Source.
	Line int
}

// Binding gives a role's rules to users and groups.
type Binding struct {
	Role   string
	Users  []string
	Groups []string
	// JobOwners, when not nil, restricts the role's rules on job/<id>
	// resources to jobs owned by one of them; "${user}" is the caller.
	// Rules on other resources are not restricted.
	JobOwners []string
	// Line is where the binding starts in Source.
	Line int
}

// PolicyError is a policy file error at a line.
type PolicyError struct {
	Source string
	Line   int
	Msg    string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("policy %s:%d: %s", e.Source, e.Line, e.Msg)
	}
	return fmt.Sprintf("policy %s: %s", e.Source, e.Msg)
}

// knownVerbs are the verbs a rule may name.
var knownVerbs = []string{VerbView, VerbList, VerbSubmit, VerbCancel, VerbSavepoint, VerbAdmin, VerbRead, VerbWrite, VerbAny}

// LoadPolicy reads and parses the policy file at path. Errors name the
// path and the line.
func LoadPolicy(path string) (*Policy, error) {
	data, err := readPolicyFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePolicy(data, path)
}

func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("authorization policy (%s): %w", PolicyFileKey, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("read authorization policy %s: %w", path, err)
	}
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("authorization policy %s (%s) is larger than %d MiB", path, PolicyFileKey, maxPolicySize>>20)
	}
	return data, nil
}

// ParsePolicy parses and validates a policy; source names it in errors.
// Unknown keys, unknown verbs, unknown roles, rules without verbs or
// resources and malformed patterns are errors, so a typo never silently
// grants or withholds access. An empty document is an error too: a file
// caught half-written must not replace a good policy with one that
// denies everyone.
func ParsePolicy(data []byte, source string) (p *Policy, err error) {
	defer func() {
		// The YAML decoder is third-party code fed with untrusted-ish
		// input; a panic in it must be a load error, not a crash of the
		// job manager in the middle of a reload.
		if r := recover(); r != nil {
			p, err = nil, &PolicyError{Source: source, Msg: fmt.Sprintf("cannot parse: %v", r)}
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &PolicyError{Source: source, Msg: "policy is empty; write `roles: {}` for a policy that grants nothing"}
		}
		return nil, &PolicyError{Source: source, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, &PolicyError{Source: source, Line: extra.Line, Msg: "more than one YAML document; a policy is one document"}
	}
	pp := &parser{source: source}
	p = &Policy{Source: source, Roles: map[string][]Rule{}}
	if err := pp.policy(&doc, p); err != nil {
		return nil, err
	}
	return p, nil
}

type parser struct{ source string }

func (ps *parser) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &PolicyError{Source: ps.source, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// resolve follows document wrappers and aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode && n.Alias != nil:
			n = n.Alias
		default:
			return n
		}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// mapping calls fn for each key of a mapping node, rejecting duplicates.
func (ps *parser) mapping(n *yaml.Node, what string, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return ps.errf(n, "%s must be a mapping", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return ps.errf(k, "%s: keys must be strings", what)
		}
		if seen[k.Value] {
			return ps.errf(k, "%s: %q is given twice", what, k.Value)
		}
		seen[k.Value] = true
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// strings reads a list of non-empty strings.
func (ps *parser) strings(n *yaml.Node, what string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, ps.errf(n, "%s must be a list, e.g. [a, b]", what)
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		c = resolve(c)
		if c.Kind != yaml.ScalarNode || isNull(c) {
			return nil, ps.errf(c, "%s: entries must be strings", what)
		}
		v := strings.TrimSpace(c.Value)
		if v == "" {
			return nil, ps.errf(c, "%s: empty entry", what)
		}
		out = append(out, v)
	}
	return out, nil
}

func (ps *parser) policy(doc *yaml.Node, p *Policy) error {
	n := resolve(doc)
	if isNull(n) {
		return ps.errf(n, "policy is empty; write `roles: {}` for a policy that grants nothing")
	}
	var bindings *yaml.Node
	err := ps.mapping(n, "policy", func(key string, k, v *yaml.Node) error {
		switch key {
		case "super-users":
			users, err := ps.strings(v, "super-users")
			if err != nil {
				return err
			}
			for i, u := range users {
				if err := ps.checkName(v.Content[i], "super-users", u); err != nil {
					return err
				}
			}
			p.SuperUsers = users
		case "roles":
			return ps.roles(v, p)
		case "bindings":
			bindings = v // after the roles, whatever the order in the file
		default:
			return ps.errf(k, "unknown key %q (known: super-users, roles, bindings)", key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if bindings != nil {
		return ps.bindings(bindings, p)
	}
	return nil
}

// checkName rejects names that look like patterns: users and groups are
// matched literally, and "*" would read as "everyone".
func (ps *parser) checkName(n *yaml.Node, what, name string) error {
	if strings.ContainsAny(name, "*") || strings.Contains(name, "${") {
		return ps.errf(n, "%s: %q: names are matched literally, with no wildcards or variables (bind the group system:authenticated for every authenticated user)", what, name)
	}
	return nil
}

func (ps *parser) roles(n *yaml.Node, p *Policy) error {
	if isNull(n) {
		return nil
	}
	return ps.mapping(n, "roles", func(name string, k, v *yaml.Node) error {
		if name == "" {
			return ps.errf(k, "roles: empty role name")
		}
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			return ps.errf(v, "role %q must be a non-empty list of rules, each with verbs and resources", name)
		}
		rules := make([]Rule, 0, len(v.Content))
		for _, rn := range v.Content {
			r, err := ps.rule(resolve(rn), name)
			if err != nil {
				return err
			}
			rules = append(rules, r)
		}
		p.Roles[name] = rules
		return nil
	})
}

func (ps *parser) rule(n *yaml.Node, role string) (Rule, error) {
	r := Rule{Line: n.Line}
	what := fmt.Sprintf("role %q rule", role)
	err := ps.mapping(n, what, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "verbs":
			if r.Verbs, err = ps.strings(v, what+" verbs"); err != nil {
				return err
			}
			for i, verb := range r.Verbs {
				if !slices.Contains(knownVerbs, verb) {
					return ps.errf(v.Content[i], "%s: unknown verb %q (known: %s)", what, verb, strings.Join(knownVerbs, ", "))
				}
			}
		case "resources":
			if r.Resources, err = ps.strings(v, what+" resources"); err != nil {
				return err
			}
			for i, res := range r.Resources {
				if _, err := parsePattern(res); err != nil {
					return ps.errf(v.Content[i], "%s: resource %q: %v", what, res, err)
				}
			}
		default:
			return ps.errf(k, "%s: unknown key %q (known: verbs, resources)", what, key)
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	if len(r.Verbs) == 0 {
		return r, ps.errf(n, "%s has no verbs", what)
	}
	if len(r.Resources) == 0 {
		return r, ps.errf(n, "%s has no resources", what)
	}
	return r, nil
}

func (ps *parser) bindings(n *yaml.Node, p *Policy) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return ps.errf(n, "bindings must be a list")
	}
	for _, bn := range n.Content {
		bn = resolve(bn)
		b := Binding{Line: bn.Line}
		var roleNode, ownersNode *yaml.Node
		err := ps.mapping(bn, "binding", func(key string, k, v *yaml.Node) error {
			var err error
			switch key {
			case "role":
				if v.Kind != yaml.ScalarNode || isNull(v) {
					return ps.errf(v, "binding role must be a role name")
				}
				b.Role, roleNode = v.Value, v
			case "users":
				b.Users, err = ps.names(v, "binding users")
			case "groups":
				b.Groups, err = ps.names(v, "binding groups")
			case "job-owners":
				ownersNode = v
				b.JobOwners, err = ps.strings(v, "binding job-owners")
				for i, o := range b.JobOwners {
					if err == nil && o != "${user}" {
						err = ps.checkName(v.Content[i], "binding job-owners", o)
					}
				}
			default:
				return ps.errf(k, "binding: unknown key %q (known: role, users, groups, job-owners)", key)
			}
			return err
		})
		if err != nil {
			return err
		}
		switch {
		case roleNode == nil:
			return ps.errf(bn, "binding has no role")
		case p.Roles[b.Role] == nil:
			return ps.errf(roleNode, "binding: unknown role %q", b.Role)
		case len(b.Users) == 0 && len(b.Groups) == 0:
			return ps.errf(bn, "binding of role %q names no users or groups", b.Role)
		case ownersNode != nil && len(b.JobOwners) == 0:
			// An empty list restricting to no jobs, or meaning no
			// restriction, would both surprise someone.
			return ps.errf(ownersNode, "binding job-owners is empty: list owners, or remove it to apply the role to every job")
		}
		p.Bindings = append(p.Bindings, b)
	}
	return nil
}

func (ps *parser) names(n *yaml.Node, what string) ([]string, error) {
	names, err := ps.strings(n, what)
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		if err := ps.checkName(n.Content[i], what, name); err != nil {
			return nil, err
		}
	}
	return names, nil
}
