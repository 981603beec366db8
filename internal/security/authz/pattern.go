package authz

import (
	"errors"
	"path"
	"strings"
)

// userVar in a resource pattern or in job-owners is the caller's name.
const userVar = "${user}"

// maxStars bounds the wildcards of one pattern, so matching stays cheap.
const maxStars = 8

type partKind uint8

const (
	partLit  partKind = iota // literal text
	partUser                 // ${user}
	partStar                 // "*" before the end: any run of characters other than "/"
	partRest                 // "*" at the end: anything, across "/"
)

type part struct {
	kind partKind
	lit  string
}

// pattern is a parsed resource pattern. Wildcards follow paths: a "*"
// inside the pattern matches within one path segment, a "*" at the end
// matches the rest of the resource, so "file:/srv/in/*" matches
// "file:/srv/in/a" and "file:/srv/in/a/b", and "kafka:topic/logs-*" is a
// prefix match.
type pattern struct {
	raw     string
	parts   []part
	hasUser bool
}

// parsePattern parses and validates a resource pattern from a policy.
func parsePattern(s string) (pattern, error) {
	p := pattern{raw: s}
	if s == "" {
		return p, errors.New("empty resource")
	}
	if strings.Contains(s, "**") {
		return p, errors.New(`"**" is not supported: a "*" at the end already matches across "/"`)
	}
	if strings.Count(s, "*") > maxStars {
		return p, errors.New("too many wildcards")
	}
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "*$")
		if i < 0 {
			p.parts = append(p.parts, part{kind: partLit, lit: rest})
			break
		}
		if i > 0 {
			p.parts = append(p.parts, part{kind: partLit, lit: rest[:i]})
		}
		switch {
		case rest[i] == '*' && i == len(rest)-1:
			p.parts = append(p.parts, part{kind: partRest})
			rest = ""
		case rest[i] == '*':
			p.parts = append(p.parts, part{kind: partStar})
			rest = rest[i+1:]
		case strings.HasPrefix(rest[i:], userVar):
			p.parts = append(p.parts, part{kind: partUser})
			p.hasUser = true
			rest = rest[i+len(userVar):]
		case strings.HasPrefix(rest[i:], "${"):
			return p, errors.New("unknown variable: the only variable is ${user}")
		default: // a lone "$" is literal
			p.parts = append(p.parts, part{kind: partLit, lit: "$"})
			rest = rest[i+1:]
		}
	}
	p.parts = mergeLits(p.parts)
	if fp, ok := strings.CutPrefix(s, "file:"); ok {
		if err := checkFilePattern(fp); err != nil {
			return p, err
		}
	}
	return p, nil
}

// checkFilePattern rejects file patterns that no cleaned path can match,
// so a pattern that would silently never apply is a load error instead.
func checkFilePattern(fp string) error {
	lit := fp
	if i := strings.IndexByte(fp, '*'); i >= 0 {
		lit = fp[:i]
	}
	if lit == "" {
		return nil
	}
	if !strings.HasPrefix(lit, "/") && !strings.HasPrefix(lit, userVar) {
		return errors.New("file patterns are absolute paths (file:/...)")
	}
	want := path.Clean(lit)
	if strings.HasSuffix(lit, "/") && want != "/" {
		want += "/"
	}
	if want != lit {
		if lit == fp {
			return errors.New(`paths are cleaned before matching, so this never matches: write "file:` + want + `"`)
		}
		return errors.New(`paths are cleaned before matching, so this never matches: write "file:` + want + fp[len(lit):] + `"`)
	}
	if strings.HasSuffix(lit, "/") && lit == fp && lit != "/" {
		return errors.New(`a cleaned path never ends in "/": write "file:` + fp + `*" for what is under it`)
	}
	return nil
}

func mergeLits(ps []part) []part {
	out := ps[:0:0]
	for _, p := range ps {
		if n := len(out); n > 0 && p.kind == partLit && out[n-1].kind == partLit {
			out[n-1].lit += p.lit
			continue
		}
		out = append(out, p)
	}
	return out
}

// expand returns the pattern with ${user} replaced by user, which must
// satisfy templateUser.
func (p pattern) expand(user string) pattern {
	if !p.hasUser {
		return p
	}
	e := pattern{raw: p.raw, parts: make([]part, len(p.parts))}
	for i, pt := range p.parts {
		if pt.kind == partUser {
			pt = part{kind: partLit, lit: user}
		}
		e.parts[i] = pt
	}
	e.parts = mergeLits(e.parts)
	return e
}

// exact returns the literal a pattern without wildcards matches.
func (p pattern) exact() (string, bool) {
	switch {
	case p.hasUser:
		return "", false
	case len(p.parts) == 0:
		return "", true
	case len(p.parts) == 1 && p.parts[0].kind == partLit:
		return p.parts[0].lit, true
	}
	return "", false
}

// prefix returns the prefix a pattern made of a literal and a trailing "*"
// matches.
func (p pattern) prefix() (string, bool) {
	switch {
	case p.hasUser:
		return "", false
	case len(p.parts) == 1 && p.parts[0].kind == partRest:
		return "", true
	case len(p.parts) == 2 && p.parts[0].kind == partLit && p.parts[1].kind == partRest:
		return p.parts[0].lit, true
	}
	return "", false
}

// match reports whether resource matches, with ${user} standing for user
// (which the caller has checked with templateUser).
func (p pattern) match(resource, user string) bool {
	return matchParts(p.parts, resource, user)
}

func matchParts(ps []part, s, user string) bool {
	for i, p := range ps {
		switch p.kind {
		case partLit:
			if !strings.HasPrefix(s, p.lit) {
				return false
			}
			s = s[len(p.lit):]
		case partUser:
			if !strings.HasPrefix(s, user) {
				return false
			}
			s = s[len(user):]
		case partRest:
			return true
		case partStar:
			// Segments are short and stars few (maxStars), so plain
			// backtracking is cheap.
			for j := 0; ; j++ {
				if matchParts(ps[i+1:], s[j:], user) {
					return true
				}
				if j == len(s) || s[j] == '/' {
					return false
				}
			}
		}
	}
	return s == ""
}

// templateUser reports whether a user name may be put into a pattern for
// ${user}: a name with "/" or "*" could widen it ("file:/srv/out/${user}/*"
// for user "a/.." or "*"), and "." or ".." could climb out of it.
func templateUser(u string) bool {
	return u != "" && u != "." && u != ".." && !strings.ContainsAny(u, "/*\x00")
}

// cleanResource returns the form of a requested resource that patterns
// are matched against: file paths are cleaned (path.Clean), so
// "file:/srv/in/../etc/passwd" is matched as "file:/srv/etc/passwd".
// ok is false for a file resource that cannot be judged: one with a URL
// host ("file://host/path"), whose path a connector might read
// differently than it is written.
func cleanResource(r string) (string, bool) {
	p, isFile := strings.CutPrefix(r, "file:")
	if !isFile {
		return r, true
	}
	if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
		return "", false
	}
	return "file:" + path.Clean(p), true
}
