package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// overrideSource names -D overrides in errors and warnings.
const overrideSource = "-D"

// DefaultPath returns the configuration file to load when none is given:
// $SLUICE_CONF_DIR/config.yaml when SLUICE_CONF_DIR is set, else
// conf/config.yaml when that file exists, else "".
func DefaultPath() string {
	if dir := os.Getenv("SLUICE_CONF_DIR"); dir != "" {
		return filepath.Join(dir, "config.yaml")
	}
	const local = "conf/config.yaml"
	if st, err := os.Stat(local); err == nil && st.Mode().IsRegular() {
		return local
	}
	return ""
}

// Load reads the YAML file at path (none when path is "") and then applies
// overrides, "key=value" strings from -D flags, which win over the file.
func Load(path string, overrides []string) (*Config, error) {
	c := New()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read configuration: %w", err)
		}
		if c, err = Parse(data, path); err != nil {
			return nil, err
		}
	}
	for _, o := range overrides {
		if err := c.override(o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// strictKey reports whether an unknown key of this name stops loading
// instead of being a warning. A misspelt security key would otherwise leave
// a cluster without the protection its operator asked for (a typo in
// security.ssl.internal.enabled starts it in plaintext), so every unknown
// key under security. is an error.
func strictKey(name string) bool { return strings.HasPrefix(name, "security.") }

func unknownSecurityKey(where, name string) error {
	fix := "fix or remove it"
	if s := suggest(name); s != "" {
		fix = fmt.Sprintf("did you mean %q?", s)
	}
	return fmt.Errorf("%s: unknown security key %q: a misspelt security key would silently turn a protection off, so it stops start-up; %s",
		where, name, fix)
}

// override applies one "key=value" -D flag. An unknown key is a warning.
func (c *Config) override(o string) error {
	key, val, ok := strings.Cut(o, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("%s %s: want key=value", overrideSource, o)
	}
	ki, deprecated := lookup(key)
	if ki == nil {
		if strictKey(key) {
			return unknownSecurityKey(overrideSource, key)
		}
		c.warn(fmt.Sprintf("%s: unknown configuration key %q (ignored)%s", overrideSource, key, didYouMean(key)))
		return nil
	}
	v, err := parseText(&ki.Key, val)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", overrideSource, key, err)
	}
	if deprecated {
		c.warn(overrideSource + ": " + deprecatedWarning(key, ki.Name))
	}
	v.origin = overrideSource
	c.mu.Lock()
	c.values[ki.Name] = v
	c.mu.Unlock()
	return nil
}

func (c *Config) warn(w string) {
	c.mu.Lock()
	c.warnings = append(c.warnings, w)
	c.mu.Unlock()
}

// Parse parses a YAML configuration; source names it in errors and warnings.
// Nested maps are flattened into dotted keys, except under List and Object
// keys, whose YAML value is kept.
func Parse(data []byte, source string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(source, err)
	}
	c := New()
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return c, nil // empty file or only comments
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the top level must be a map of configuration keys (key: value), not %s",
			source, root.Line, kindName(root))
	}
	l := &loader{c: c, source: source, seen: map[string]seenKey{}}
	if err := l.walk(root, ""); err != nil {
		return nil, err
	}
	return c, nil
}

type seenKey struct {
	name string // as written, flattened
	line int
}

type loader struct {
	c      *Config
	source string
	seen   map[string]seenKey // canonical (or unknown) flattened key → first use
}

// walk flattens the mapping m whose keys start with prefix.
func (l *loader) walk(m *yaml.Node, prefix string) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, vn := m.Content[i], resolve(m.Content[i+1])
		if kn.Kind != yaml.ScalarNode || strings.TrimSpace(kn.Value) == "" {
			return fmt.Errorf("%s:%d: configuration keys must be non-empty strings", l.source, kn.Line)
		}
		name := strings.TrimSpace(kn.Value)
		if prefix != "" {
			name = prefix + "." + name
		}
		ki, deprecated := lookup(name)
		if vn.Kind == yaml.MappingNode && (ki == nil || !ki.Type.structured()) {
			if err := l.walk(vn, name); err != nil {
				return err
			}
			continue
		}
		canon := name
		if ki != nil {
			canon = ki.Name
		}
		if first, dup := l.seen[canon]; dup {
			if first.name == name {
				return fmt.Errorf("%s:%d: %s: key given twice (also at line %d); keep one",
					l.source, kn.Line, name, first.line)
			}
			return fmt.Errorf("%s:%d: %s: key given twice (also as %q at line %d); keep one",
				l.source, kn.Line, canon, first.name, first.line)
		}
		l.seen[canon] = seenKey{name, kn.Line}
		where := fmt.Sprintf("%s:%d", l.source, kn.Line)
		if ki == nil {
			if strictKey(name) {
				return unknownSecurityKey(where, name)
			}
			l.c.warn(fmt.Sprintf("%s: unknown configuration key %q (ignored)%s", where, name, didYouMean(name)))
			continue
		}
		if deprecated {
			l.c.warn(where + ": " + deprecatedWarning(name, ki.Name))
		}
		if vn.Kind == yaml.ScalarNode && vn.Tag == "!!null" {
			continue // "key:" with no value leaves the default
		}
		v, err := nodeValue(&ki.Key, vn)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", where, name, err)
		}
		v.origin = where
		l.c.values[ki.Name] = v
	}
	return nil
}

// nodeValue parses the YAML value of key k.
func nodeValue(k *Key, n *yaml.Node) (value, error) {
	switch {
	case k.Type == Object:
		var obj any
		if err := n.Decode(&obj); err != nil {
			return value{}, err
		}
		return objectValue(obj), nil
	case n.Kind == yaml.ScalarNode:
		return parseText(k, n.Value)
	case k.Type == List && n.Kind == yaml.SequenceNode:
		items := make([]string, len(n.Content))
		for i, it := range n.Content {
			if it = resolve(it); it.Kind != yaml.ScalarNode {
				return value{}, fmt.Errorf("item %d is %s: want a list of strings", i+1, kindName(it))
			}
			items[i] = it.Value
		}
		var raw any
		if err := n.Decode(&raw); err != nil {
			return value{}, err
		}
		return parseList(k, items, raw)
	}
	if k.Type == List {
		return value{}, fmt.Errorf("want a comma-separated string or a list of strings, not %s", kindName(n))
	}
	return value{}, fmt.Errorf("want a single %s value, not %s", k.Type, kindName(n))
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "an unsupported YAML node"
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a YAML syntax error into "source:line: invalid YAML: ...".
func yamlError(source string, err error) error {
	msg := trimYAMLError(err)
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return fmt.Errorf("%s:%d: invalid YAML: %s", source, line, m[2])
	}
	return fmt.Errorf("%s: invalid YAML: %s", source, msg)
}

func trimYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}
