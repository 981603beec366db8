package kafka

import (
	"regexp/syntax"
	"slices"
)

// maxPatternResources bounds how many resources a topic-pattern expands to before it is
// declared as every topic.
const maxPatternResources = 64

// prefixSet is what part of a regular expression may match: the strings in exact, and every
// string beginning with one of open ("" in open: anything).
type prefixSet struct {
	exact []string
	open  []string
}

// patternResources is what a topic-pattern is authorized as: the set of topics the pattern can
// match, over-approximated by exact topic names and prefixes ("logs-" for logs-.*), so that a
// grant the policy gives is never narrower than what the source may read at run time (it reads,
// and discovers, every topic the pattern matches whole). A pattern the expansion cannot bound
// (a wildcard before literal text, a large character class, too many alternatives) is declared
// as every topic ("*"), which only a grant on kafka:topic/* allows. Declaring the pattern as
// written would let a policy's prefix grant (kafka:topic/lin*) allow "lin.*|payroll".
func patternResources(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return []string{"*"}
	}
	s, ok := expand(re.Simplify())
	if !ok || slices.Contains(s.open, "") {
		return []string{"*"}
	}
	var out []string
	for _, t := range s.exact {
		// A string with a character no topic name has (such as a literal "*") matches no
		// topic; declaring it would read as a wildcard to the policy.
		if t != "" && validTopic(t) {
			out = append(out, t)
		}
	}
	for _, p := range s.open {
		if !validTopicPrefix(p) {
			return []string{"*"}
		}
		out = append(out, p+"*")
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		// Matches no topic name at all: declared as itself cannot widen anything, but keep
		// the request explicit.
		return []string{"*"}
	}
	return out
}

// validTopicPrefix: the characters of a Kafka topic name.
func validTopicPrefix(p string) bool {
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return len(p) <= 249
}

func expand(re *syntax.Regexp) (prefixSet, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return foldCase(string(re.Rune))
		}
		return prefixSet{exact: []string{string(re.Rune)}}, true
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpEndText, syntax.OpBeginLine, syntax.OpEndLine:
		return prefixSet{exact: []string{""}}, true
	case syntax.OpCapture:
		return expand(re.Sub[0])
	case syntax.OpCharClass:
		var runes []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(runes) >= maxPatternResources {
					return prefixSet{open: []string{""}}, true
				}
				runes = append(runes, string(r))
			}
		}
		return prefixSet{exact: runes}, true
	case syntax.OpQuest:
		s, ok := expand(re.Sub[0])
		s.exact = append(s.exact, "")
		return s, ok && s.size() <= maxPatternResources
	case syntax.OpAlternate:
		var out prefixSet
		for _, sub := range re.Sub {
			s, ok := expand(sub)
			if !ok {
				return s, false
			}
			out.exact, out.open = append(out.exact, s.exact...), append(out.open, s.open...)
			if out.size() > maxPatternResources {
				return out, false
			}
		}
		return out, true
	case syntax.OpConcat:
		out := prefixSet{exact: []string{""}}
		for _, sub := range re.Sub {
			s, ok := expand(sub)
			if !ok {
				return s, false
			}
			next := prefixSet{open: out.open}
			for _, a := range out.exact {
				for _, b := range s.exact {
					next.exact = append(next.exact, a+b)
				}
				for _, b := range s.open {
					next.open = append(next.open, a+b)
				}
			}
			out = next
			if out.size() > maxPatternResources {
				return out, false
			}
		}
		return out, true
	default:
		// Star, plus, repeat, any character: whatever follows is open.
		return prefixSet{open: []string{""}}, true
	}
}

func (s prefixSet) size() int { return len(s.exact) + len(s.open) }

// foldCase expands a case-insensitive literal ((?i)logs) into its spellings, if few.
func foldCase(lit string) (prefixSet, bool) {
	out := []string{""}
	for _, r := range lit {
		var next []string
		for _, v := range []rune{r, toUpper(r), toLower(r)} {
			for _, p := range out {
				next = append(next, p+string(v))
			}
		}
		slices.Sort(next)
		out = slices.Compact(next)
		if len(out) > maxPatternResources {
			return prefixSet{}, false
		}
	}
	return prefixSet{exact: out}, true
}

func toUpper(r rune) rune {
	if r >= 'a' && r <= 'z' {
		return r - 'a' + 'A'
	}
	return r
}

func toLower(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r - 'A' + 'a'
	}
	return r
}
