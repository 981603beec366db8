package authz

import (
	"fmt"
	"slices"
	"strings"
)

// compiled is a Policy precompiled for fast decisions: the rules are
// indexed by subject (user or group), then by verb, then by the kind of
// pattern, so a decision looks at the caller's own rules for one verb
// only, with map lookups for exact names and prefixes. Rules bound to a
// user have ${user} expanded at compile time; rules bound to a group keep
// it and match it at decision time.
type compiled struct {
	policy     *Policy
	superUsers map[string]bool
	users      map[string]*subjectRules
	groups     map[string]*subjectRules
}

type subjectRules struct {
	byVerb map[string]*ruleSet // including VerbAny
}

// ruleSet holds the grants of one subject for one verb.
type ruleSet struct {
	exact      map[string][]*grant
	prefix     map[string][]*grant
	prefixLens []int // distinct lengths of the keys of prefix, ascending
	globs      []*grant
}

// grant is one resource pattern of one rule as given by one binding.
type grant struct {
	pat    pattern
	owners *ownerSet // nil: not restricted by job owner
	role   string
	line   int // of the binding
	ruleLn int
}

// ownerSet is a binding's job-owners.
type ownerSet struct {
	names  map[string]bool
	caller bool // "${user}" is listed
}

func compile(p *Policy, extraSuper []string) *compiled {
	c := &compiled{
		policy:     p,
		superUsers: map[string]bool{},
		users:      map[string]*subjectRules{},
		groups:     map[string]*subjectRules{},
	}
	for _, u := range slices.Concat(p.SuperUsers, extraSuper) {
		if u = strings.TrimSpace(u); u != "" {
			c.superUsers[u] = true
		}
	}
	for bi := range p.Bindings {
		b := &p.Bindings[bi]
		var owners *ownerSet
		if b.JobOwners != nil {
			owners = &ownerSet{names: map[string]bool{}}
			for _, o := range b.JobOwners {
				if o == userVar {
					owners.caller = true
				} else {
					owners.names[o] = true
				}
			}
		}
		for _, r := range p.Roles[b.Role] {
			for _, res := range r.Resources {
				pat, err := parsePattern(res)
				if err != nil {
					continue // ParsePolicy has rejected it already
				}
				for _, u := range b.Users {
					if pat.hasUser && !templateUser(u) {
						continue
					}
					g := &grant{pat: pat.expand(u), owners: owners, role: b.Role, line: b.Line, ruleLn: r.Line}
					c.add(c.users, u, r.Verbs, g)
				}
				for _, grp := range b.Groups {
					g := &grant{pat: pat, owners: owners, role: b.Role, line: b.Line, ruleLn: r.Line}
					c.add(c.groups, grp, r.Verbs, g)
				}
			}
		}
	}
	return c
}

func (c *compiled) add(m map[string]*subjectRules, subject string, verbs []string, g *grant) {
	s := m[subject]
	if s == nil {
		s = &subjectRules{byVerb: map[string]*ruleSet{}}
		m[subject] = s
	}
	for _, v := range verbs {
		rs := s.byVerb[v]
		if rs == nil {
			rs = &ruleSet{exact: map[string][]*grant{}, prefix: map[string][]*grant{}}
			s.byVerb[v] = rs
		}
		rs.add(g)
	}
}

func (rs *ruleSet) add(g *grant) {
	if lit, ok := g.pat.exact(); ok {
		rs.exact[lit] = append(rs.exact[lit], g)
		return
	}
	if pre, ok := g.pat.prefix(); ok {
		if _, seen := rs.prefix[pre]; !seen {
			i, _ := slices.BinarySearch(rs.prefixLens, len(pre))
			if i == len(rs.prefixLens) || rs.prefixLens[i] != len(pre) {
				rs.prefixLens = slices.Insert(rs.prefixLens, i, len(pre))
			}
		}
		rs.prefix[pre] = append(rs.prefix[pre], g)
		return
	}
	rs.globs = append(rs.globs, g)
}

// request is what one check needs to know about the caller.
type request struct {
	user     string
	userOK   bool // user may stand for ${user}
	isJob    bool
	jobOwner string // "" when unknown
}

// find returns a grant that allows verb on the cleaned resource, or nil.
func (c *compiled) find(user string, groups []string, verb, resource string, job *JobACL) *grant {
	rq := request{user: user, userOK: templateUser(user), isJob: strings.HasPrefix(resource, "job/")}
	if job != nil {
		rq.jobOwner = job.Owner
	}
	if s := c.users[user]; s != nil {
		if g := s.find(verb, resource, &rq); g != nil {
			return g
		}
	}
	for _, grp := range groups {
		if s := c.groups[grp]; s != nil {
			if g := s.find(verb, resource, &rq); g != nil {
				return g
			}
		}
	}
	return nil
}

func (s *subjectRules) find(verb, resource string, rq *request) *grant {
	if rs := s.byVerb[verb]; rs != nil {
		if g := rs.find(resource, rq); g != nil {
			return g
		}
	}
	if rs := s.byVerb[VerbAny]; rs != nil {
		return rs.find(resource, rq)
	}
	return nil
}

func (rs *ruleSet) find(resource string, rq *request) *grant {
	for _, g := range rs.exact[resource] {
		if g.ownerOK(rq) {
			return g
		}
	}
	for _, n := range rs.prefixLens {
		if n > len(resource) {
			break
		}
		for _, g := range rs.prefix[resource[:n]] {
			if g.ownerOK(rq) {
				return g
			}
		}
	}
	for _, g := range rs.globs {
		if g.pat.hasUser && !rq.userOK {
			continue
		}
		if g.pat.match(resource, rq.user) && g.ownerOK(rq) {
			return g
		}
	}
	return nil
}

// ownerOK applies the binding's job-owners to job/<id> resources. A job
// whose owner is unknown matches no restricted binding.
func (g *grant) ownerOK(rq *request) bool {
	if g.owners == nil || !rq.isJob {
		return true
	}
	if rq.jobOwner == "" {
		return false
	}
	return g.owners.names[rq.jobOwner] || (g.owners.caller && rq.jobOwner == rq.user)
}

// describe says where a grant comes from, for the reason of an Allow.
func (g *grant) describe(src string) string {
	return fmt.Sprintf("role %s (rule at %s:%d, bound at line %d)", g.role, src, g.ruleLn, g.line)
}
