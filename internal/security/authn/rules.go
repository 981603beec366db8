package authn

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// RulesKey is the config key the principal mapping rules come from; parse
// errors name it so the user knows what to fix.
const RulesKey = "security.rest.authentication.x509.principal-mapping-rules"

// PrincipalMapper maps a certificate subject to a user name with Kafka's
// ssl.principal.mapping.rules, so rules carry over from a Kafka cluster.
//
// The zero value, sluice's documented default when no rules are
// configured, maps a subject to its CN: that is what people expect from a
// client certificate (Kubernetes does the same), while Kafka's default,
// the whole DN, makes ACLs unreadable. Once rules are configured they mean
// exactly what they mean in Kafka, including DEFAULT (the whole DN).
type PrincipalMapper struct {
	rules []principalRule
}

type principalRule struct {
	text        string // as written, for error messages
	isDefault   bool
	re          *regexp.Regexp // anchored: Java's Matcher.matches()
	replacement []replPart
	lower       bool
	upper       bool
}

// replPart is a literal (group < 0) or a reference to a submatch.
type replPart struct {
	literal string
	group   int
}

// ParsePrincipalRules parses Kafka's rule list: `RULE:pattern/replacement/`
// with an optional L or U flag (lower or upper case the result), or
// DEFAULT, separated by commas or newlines. A comma inside a pattern does
// not split (Kafka reads the pattern up to its unescaped '/'), and `\/`
// stands for '/' in pattern and replacement. Patterns use Go's RE2 syntax,
// which is Java's for everything but lookaround, backreferences and
// possessive quantifiers. An empty string gives the CN mapper.
func ParsePrincipalRules(s string) (PrincipalMapper, error) {
	var m PrincipalMapper
	i := 0
	for n := 1; ; {
		for i < len(s) && (isSpace(s[i]) || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		r, end, err := parseRule(s, i)
		if err != nil {
			text := s[start:]
			if j := strings.IndexAny(text, ",\n"); j >= 0 && end <= start {
				text = text[:j]
			} else if end > start {
				text = s[start:end]
			}
			return PrincipalMapper{}, fmt.Errorf("%s: rule %d %q: %w", RulesKey, n, strings.TrimSpace(text), err)
		}
		m.rules = append(m.rules, r)
		i = end
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
			i++
		}
		if i < len(s) && s[i] != ',' && s[i] != '\n' {
			return PrincipalMapper{}, fmt.Errorf("%s: rule %d %q: unexpected %q after the rule; separate rules with commas or newlines",
				RulesKey, n, r.text, s[i:min(i+10, len(s))])
		}
		n++
	}
	return m, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parseRule parses the rule at s[i:] and returns it with the offset after
// it. On error the offset is where parsing stopped, or i if it is unknown.
func parseRule(s string, i int) (principalRule, int, error) {
	start := i
	if strings.HasPrefix(s[i:], "DEFAULT") {
		return principalRule{text: "DEFAULT", isDefault: true}, i + len("DEFAULT"), nil
	}
	if !strings.HasPrefix(s[i:], "RULE:") {
		return principalRule{}, i, errors.New("expected DEFAULT or RULE:pattern/replacement/[LU]")
	}
	i += len("RULE:")
	pattern, i, ok := untilSlash(s, i)
	if !ok {
		return principalRule{}, i, errors.New("missing '/' after the pattern (write RULE:pattern/replacement/)")
	}
	replacement, i, ok := untilSlash(s, i)
	if !ok {
		return principalRule{}, i, errors.New("missing '/' after the replacement (write RULE:pattern/replacement/)")
	}
	r := principalRule{}
	if i < len(s) && (s[i] == 'L' || s[i] == 'U') {
		r.lower, r.upper = s[i] == 'L', s[i] == 'U'
		i++
	}
	r.text = s[start:i]
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return principalRule{}, i, fmt.Errorf("invalid regexp: %v", err)
	}
	r.re = re
	if r.replacement, err = parseReplacement(replacement, re); err != nil {
		return principalRule{}, i, fmt.Errorf("invalid replacement: %v", err)
	}
	return r, i, nil
}

// untilSlash reads up to the next unescaped '/', keeping escapes (the
// regexp and the replacement parser both understand them), and returns the
// text and the offset after the slash.
func untilSlash(s string, i int) (string, int, bool) {
	var b strings.Builder
	for i < len(s) {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			b.WriteString(s[i : i+2])
			i += 2
		case c == '/':
			return b.String(), i + 1, true
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), i, false
}

// parseReplacement reads a Java Matcher replacement: `\x` is a literal x,
// `$n` a group (Java reads digits while the number stays a valid group),
// `${name}` a named group. Errors that Java would raise at the first
// matching connection are raised here, at start-up.
func parseReplacement(s string, re *regexp.Regexp) ([]replPart, error) {
	var parts []replPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, replPart{literal: lit.String(), group: -1})
			lit.Reset()
		}
	}
	groups := re.NumSubexp()
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			lit.WriteByte(s[i+1])
			i += 2
		case '$':
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, errors.New("unterminated ${name}")
				}
				name := s[i+1 : i+end]
				g := re.SubexpIndex(name)
				if g < 0 {
					return nil, fmt.Errorf("no group named %q in the pattern", name)
				}
				flush()
				parts = append(parts, replPart{group: g})
				i += end + 1
				continue
			}
			if i >= len(s) || s[i] < '0' || s[i] > '9' {
				return nil, errors.New("'$' must be followed by a group number or {name}; write \\$ for a literal '$'")
			}
			g := int(s[i] - '0')
			i++
			for i < len(s) && s[i] >= '0' && s[i] <= '9' && g*10+int(s[i]-'0') <= groups {
				g = g*10 + int(s[i]-'0')
				i++
			}
			if g > groups {
				return nil, fmt.Errorf("$%d refers to a group the pattern does not have (it has %d)", g, groups)
			}
			flush()
			parts = append(parts, replPart{group: g})
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return parts, nil
}

// Map returns the user name for dn, an RFC 2253 subject as Java's
// X500Principal.getName() prints it ("CN=alice,OU=eng,O=acme,C=US"). The
// first rule whose pattern matches the whole DN wins.
func (m PrincipalMapper) Map(dn string) (string, error) {
	if len(m.rules) == 0 {
		return commonName(dn)
	}
	for _, r := range m.rules {
		name, ok := r.apply(dn)
		if !ok {
			continue
		}
		if name == "" {
			return "", fmt.Errorf("principal mapping rule %q maps subject %q to an empty user name", r.text, dn)
		}
		return name, nil
	}
	return "", fmt.Errorf("no principal mapping rule matches subject %q", dn)
}

// MapExplicit maps s with the first rule whose pattern contains marker
// literally and matches s; ok is false when none does. DEFAULT and the CN
// default never apply: it is for names only a rule written for them may
// map (a process's SPIFFE identity).
func (m PrincipalMapper) MapExplicit(s, marker string) (name string, ok bool, err error) {
	for _, r := range m.rules {
		if r.isDefault || !strings.Contains(r.text, marker) {
			continue
		}
		name, ok := r.apply(s)
		if !ok {
			continue
		}
		if name == "" {
			return "", false, fmt.Errorf("principal mapping rule %q maps %q to an empty user name", r.text, s)
		}
		return name, true, nil
	}
	return "", false, nil
}

// apply expands the replacement once against the whole-DN match. Kafka
// calls String.replaceAll after matches(), which is the same for every
// pattern that cannot also match an empty string at the end of the DN.
func (r principalRule) apply(dn string) (string, bool) {
	if r.isDefault {
		return dn, true
	}
	sub := r.re.FindStringSubmatchIndex(dn)
	if sub == nil {
		return "", false
	}
	var b strings.Builder
	for _, p := range r.replacement {
		if p.group < 0 {
			b.WriteString(p.literal)
		} else if lo, hi := sub[2*p.group], sub[2*p.group+1]; lo >= 0 {
			b.WriteString(dn[lo:hi])
		}
	}
	out := b.String()
	switch {
	case r.lower:
		out = strings.ToLower(out)
	case r.upper:
		out = strings.ToUpper(out)
	}
	return out, true
}

// commonName returns the first (most specific) CN of dn.
func commonName(dn string) (string, error) {
	attrs, err := parseDN(dn)
	if err != nil {
		return "", err
	}
	for _, a := range attrs {
		if strings.EqualFold(a.typ, "CN") || a.typ == "2.5.4.3" {
			if a.value == "" {
				break
			}
			return a.value, nil
		}
	}
	return "", fmt.Errorf("subject %q has no CN to use as the user name; set %s to map it", dn, RulesKey)
}

// String returns the rules as they were written, for logs.
func (m PrincipalMapper) String() string {
	if len(m.rules) == 0 {
		return "CN"
	}
	texts := make([]string, len(m.rules))
	for i, r := range m.rules {
		texts[i] = r.text
	}
	return strings.Join(texts, ",")
}
