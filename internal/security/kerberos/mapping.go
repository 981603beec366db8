package kerberos

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Rules are compiled security.kerberos.principal-to-local rules: a subset
// of MIT's auth_to_local.
//
//	RULE:[n:fmt](regex)s/pattern/replacement/g
//	DEFAULT
//
// A RULE applies to principals of exactly n components. fmt builds the
// selection string from $0 (the realm) and $1..$n (the components);
// (regex), optional, must match the whole selection string; then each
// optional s/pattern/replacement/ (g: every match, else the first)
// rewrites it, the replacement taken literally as MIT does. DEFAULT maps
// name@DEFAULT_REALM to name and maps nothing else. The first rule that
// applies gives the user; no rule at all means DEFAULT.
//
// Deviation from MIT, on purpose: MIT searches the selection string for
// the regex, so (.*@EXAMPLE\.COM) also accepts alice@EXAMPLE.COM.EVIL.ORG;
// here the regex is anchored at both ends, as in Hadoop.
type Rules struct {
	rules []rule
}

type rule struct {
	text   string
	isDef  bool
	n      int
	format string
	match  *regexp.Regexp // nil: every selection string
	substs []subst
}

type subst struct {
	re     *regexp.Regexp
	repl   string
	global bool
}

// ErrNoRule is returned (wrapped) when no rule maps a principal.
var ErrNoRule = errors.New("no principal-to-local rule maps the principal")

// ParseRules compiles rules; nil or empty means DEFAULT.
func ParseRules(rules []string) (*Rules, error) {
	rs := &Rules{}
	for _, text := range rules {
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		r, err := parseRule(text)
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w", text, err)
		}
		rs.rules = append(rs.rules, r)
	}
	if len(rs.rules) == 0 {
		rs.rules = []rule{{text: "DEFAULT", isDef: true}}
	}
	return rs, nil
}

func parseRule(text string) (rule, error) {
	if text == "DEFAULT" {
		return rule{text: text, isDef: true}, nil
	}
	rest, ok := strings.CutPrefix(text, "RULE:[")
	if !ok {
		return rule{}, errors.New("want RULE:[n:fmt](regex)s/pattern/replacement/ or DEFAULT")
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return rule{}, errors.New("missing ] after RULE:[n:fmt")
	}
	nText, format, ok := strings.Cut(rest[:end], ":")
	if !ok {
		return rule{}, errors.New("want [n:fmt]")
	}
	n, err := strconv.Atoi(nText)
	if err != nil || n < 1 || n > 9 {
		return rule{}, fmt.Errorf("component count %q: want 1 to 9", nText)
	}
	r := rule{text: text, n: n, format: format}
	if err := checkFormat(format, n); err != nil {
		return rule{}, err
	}
	rest = rest[end+1:]
	if strings.HasPrefix(rest, "(") {
		expr, after, err := cutBalanced(rest)
		if err != nil {
			return rule{}, err
		}
		if r.match, err = regexp.Compile("^(?:" + expr + ")$"); err != nil {
			return rule{}, fmt.Errorf("regex: %w", err)
		}
		rest = after
	}
	for rest != "" {
		s, after, err := parseSubst(rest)
		if err != nil {
			return rule{}, err
		}
		r.substs = append(r.substs, s)
		rest = after
	}
	return r, nil
}

// checkFormat accepts $0..$n and literal text.
func checkFormat(format string, n int) error {
	for i := 0; i < len(format); i++ {
		if format[i] != '$' {
			continue
		}
		if i+1 >= len(format) || format[i+1] < '0' || format[i+1] > '9' {
			return fmt.Errorf("format %q: $ must be followed by a component number", format)
		}
		if d := int(format[i+1] - '0'); d > n {
			return fmt.Errorf("format %q: $%d but the rule is for %d components", format, d, n)
		}
		i++
	}
	return nil
}

// cutBalanced cuts "(...)" with nested parentheses and backslash escapes
// off the front of s and returns its inside.
func cutBalanced(s string) (inside, rest string, err error) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[1:i], s[i+1:], nil
			}
		}
	}
	return "", "", errors.New("unbalanced ( in the regex")
}

// parseSubst parses one s/pattern/replacement/[g]; "\/" stands for "/".
func parseSubst(s string) (subst, string, error) {
	if !strings.HasPrefix(s, "s/") {
		return subst{}, "", fmt.Errorf("unexpected %q: want s/pattern/replacement/", s)
	}
	var parts []string
	var cur strings.Builder
	i := 2
	for ; i < len(s) && len(parts) < 2; i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '/':
			cur.WriteByte('/')
			i++
		case s[i] == '/':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	if len(parts) < 2 {
		return subst{}, "", errors.New("unterminated s/pattern/replacement/")
	}
	re, err := regexp.Compile(parts[0])
	if err != nil {
		return subst{}, "", fmt.Errorf("s/%s/: %w", parts[0], err)
	}
	sub := subst{re: re, repl: parts[1]}
	rest := s[i:]
	if strings.HasPrefix(rest, "g") {
		sub.global = true
		rest = rest[1:]
	}
	return sub, rest, nil
}

// Map returns the local user name of principal ("alice@REALM", or "alice"
// in defaultRealm).
func (rs *Rules) Map(defaultRealm, principal string) (string, error) {
	comps, realm, err := splitPrincipal(principal, defaultRealm)
	if err != nil {
		return "", err
	}
	for _, r := range rs.rules {
		if user, ok := r.apply(comps, realm, defaultRealm); ok {
			if user == "" {
				return "", fmt.Errorf("kerberos: rule %q maps %s to an empty name", r.text, principal)
			}
			return user, nil
		}
	}
	return "", fmt.Errorf("kerberos: %w %s (%s)", ErrNoRule, principal, KeyPrincipalToLocal)
}

func (r rule) apply(comps []string, realm, defaultRealm string) (string, bool) {
	if r.isDef {
		if len(comps) == 1 && realm == defaultRealm && defaultRealm != "" {
			return comps[0], true
		}
		return "", false
	}
	if len(comps) != r.n {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(r.format); i++ {
		if r.format[i] == '$' {
			if d := int(r.format[i+1] - '0'); d == 0 {
				b.WriteString(realm)
			} else {
				b.WriteString(comps[d-1])
			}
			i++
			continue
		}
		b.WriteByte(r.format[i])
	}
	sel := b.String()
	if r.match != nil && !r.match.MatchString(sel) {
		return "", false
	}
	for _, s := range r.substs {
		if s.global {
			sel = s.re.ReplaceAllLiteralString(sel, s.repl)
		} else if loc := s.re.FindStringIndex(sel); loc != nil {
			sel = sel[:loc[0]] + s.repl + sel[loc[1]:]
		}
	}
	return sel, true
}

// MapPrincipal maps principal to a local user name with rules
// (security.kerberos.principal-to-local); see Rules. Callers mapping many
// principals should ParseRules once.
func MapPrincipal(rules []string, defaultRealm, principal string) (string, error) {
	rs, err := ParseRules(rules)
	if err != nil {
		return "", fmt.Errorf("kerberos: %s: %w", KeyPrincipalToLocal, err)
	}
	return rs.Map(defaultRealm, principal)
}

// splitPrincipal splits "a/b@REALM" into its components and realm; a
// principal without realm is in defaultRealm. Backslash escapes "/" and
// "@" as in MIT's krb5_parse_name.
func splitPrincipal(p, defaultRealm string) ([]string, string, error) {
	var comps []string
	var cur strings.Builder
	realm, hasRealm := "", false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			cur.WriteByte(p[i])
		case c == '/' && !hasRealm:
			comps = append(comps, cur.String())
			cur.Reset()
		case c == '@' && !hasRealm:
			comps = append(comps, cur.String())
			cur.Reset()
			hasRealm = true
		default:
			cur.WriteByte(c)
		}
	}
	if hasRealm {
		realm = cur.String()
	} else {
		comps = append(comps, cur.String())
		realm = defaultRealm
	}
	for _, c := range comps {
		if c == "" {
			return nil, "", fmt.Errorf("kerberos: malformed principal %q", p)
		}
	}
	if realm == "" {
		return nil, "", fmt.Errorf("kerberos: principal %q has no realm and there is no default realm", p)
	}
	return comps, realm, nil
}

// canonicalPrincipal returns principal as name@REALM, adding defaultRealm
// when it has none.
func canonicalPrincipal(principal, defaultRealm string) (name, realm string, err error) {
	comps, realm, err := splitPrincipal(principal, defaultRealm)
	if err != nil {
		return "", "", err
	}
	return strings.Join(comps, "/"), realm, nil
}
