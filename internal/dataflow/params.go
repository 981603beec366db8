package dataflow

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxParamExpansion bounds how many bytes parameter substitution may add to a job spec: a
// spec of many ${x} references and a large value of x would otherwise multiply the two sizes
// in memory.
const MaxParamExpansion = 4 << 20

var errParamExpansion = fmt.Errorf("parameters expand the job spec by more than %d bytes: pass large values in an attached file, not as parameters", MaxParamExpansion)

// substituteParams replaces ${name} in every string scalar of the tree (except the parameters
// section itself). Working on the parsed tree rather than the raw text means a value can never
// inject YAML structure. $${x} yields a literal ${x}. used collects the names referenced;
// budget is what substitution may still add, in bytes.
func substituteParams(n *yaml.Node, values map[string]string, used map[string]bool, budget *int) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if err := substituteParams(c, values, used, budget); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := substituteParams(n.Content[i+1], values, used, budget); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		out, err := expandParams(n.Value, values, used, *budget+len(n.Value))
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		if *budget -= len(out) - len(n.Value); *budget < 0 {
			return fmt.Errorf("line %d: %w", n.Line, errParamExpansion)
		}
		n.Value = out
		// A plain scalar like `rate: ${rate}` was resolved as a string; clearing the tag lets
		// it resolve again from its new text, so numbers parse after substitution. Quoted
		// scalars stay strings.
		if n.Style == 0 {
			n.Tag = ""
		}
	}
	return nil
}

// expandParams expands one string into at most limit bytes.
func expandParams(s string, values map[string]string, used map[string]bool, limit int) (string, error) {
	var b strings.Builder
	for {
		if b.Len() > limit {
			return "", errParamExpansion
		}
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			// $${x}: drop one '$', keep the rest literally.
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated parameter reference in %q: write ${name}, or $${ for a literal ${", s)
		}
		name := s[i+2 : i+end]
		if !validParamName(name) {
			return "", fmt.Errorf("bad parameter name %q: use letters, digits, '_', '-' and '.'", name)
		}
		used[name] = true
		v, ok := values[name]
		if !ok {
			return "", fmt.Errorf("parameter %q is not set: pass --param %s=VALUE", name, name)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		ok := c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// mergeParams combines the spec's defaults with the caller's values (which win). A caller value
// for a parameter the spec neither declares nor references is an error: it is almost always a
// typo that would otherwise silently run the job on the default.
func mergeParams(defaults, given map[string]string) map[string]string {
	out := make(map[string]string, len(defaults)+len(given))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range given {
		out[k] = v
	}
	return out
}

func checkUnknownParams(defaults, given map[string]string, used map[string]bool) error {
	var unknown []string
	for k := range given {
		if _, ok := defaults[k]; !ok && !used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	declared := make([]string, 0, len(defaults))
	for k := range defaults {
		declared = append(declared, k)
	}
	slices.Sort(declared)
	return fmt.Errorf("unknown parameter %q: the job declares %s", unknown[0], listOrNone(declared))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
