// Package config is sluice's typed configuration with Flink-compatible keys.
//
// Keys are registered (see Register) with a type and a default; values are
// validated when loaded or Set, so getters never fail. Getters panic on a
// key that is not registered: that is a programming error.
package config

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config holds configuration values. It is safe for concurrent use.
type Config struct {
	mu       sync.RWMutex
	values   map[string]value // canonical key → value set by the user
	warnings []string
}

// Entry is one key and its value as shown to users, with sensitive values
// masked.
type Entry struct {
	Key   string
	Value string
}

// New returns a Config with no values set: every getter returns the default.
func New() *Config {
	return &Config{values: map[string]value{}}
}

// Warnings returns the warnings from loading and setting values, such as
// unknown or deprecated keys, in order.
func (c *Config) Warnings() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.warnings)
}

// Set validates value for key (a canonical, alias or deprecated name) and
// sets it. An unknown key is an error.
func (c *Config) Set(key, value string) error {
	ki, deprecated := lookup(key)
	if ki == nil {
		return fmt.Errorf("unknown configuration key %q%s", key, didYouMean(key))
	}
	v, err := parseText(&ki.Key, value)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	v.origin = "Set"
	c.mu.Lock()
	defer c.mu.Unlock()
	if deprecated {
		c.warnings = append(c.warnings, deprecatedWarning(key, ki.Name))
	}
	c.values[ki.Name] = v
	return nil
}

// effective returns the value of key: the key's own value, else the first
// fallback that is set, else the default. ok is false when there is none.
func (c *Config) effective(key string, types ...Type) (ki *keyInfo, v value, ok bool) {
	ki = mustLookup(key)
	if len(types) > 0 && !slices.Contains(types, ki.Type) {
		panic(fmt.Sprintf("config: key %q has type %s, not %s", key, ki.Type, types[0]))
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.values[ki.Name]; ok {
		return ki, v, true
	}
	for _, fb := range ki.Fallbacks {
		f := mustLookup(fb)
		if f.Type != ki.Type {
			panic(fmt.Sprintf("config: fallback %q of %q has type %s, not %s", fb, key, f.Type, ki.Type))
		}
		if v, ok := c.values[f.Name]; ok {
			return ki, v, true
		}
	}
	return ki, ki.def, ki.hasDef
}

// String returns the value of key as text (for List keys, comma-separated;
// for Object keys, JSON), or "" when it has no value.
func (c *Config) String(key string) string {
	_, v, _ := c.effective(key)
	return v.text
}

// Int returns the value of an Int key, or 0.
func (c *Config) Int(key string) int {
	_, v, ok := c.effective(key, Int)
	if !ok {
		return 0
	}
	return int(v.typed.(int64))
}

// Bool returns the value of a Bool key, or false.
func (c *Config) Bool(key string) bool {
	_, v, ok := c.effective(key, Bool)
	return ok && v.typed.(bool)
}

// Duration returns the value of a Duration key, or 0. Flink's "-1 ms"
// ("use the platform default") is returned as a negative duration.
func (c *Config) Duration(key string) time.Duration {
	_, v, ok := c.effective(key, Duration)
	if !ok {
		return 0
	}
	return v.typed.(time.Duration)
}

// Float returns the value of a Float key, or 0.
func (c *Config) Float(key string) float64 {
	_, v, ok := c.effective(key, Float)
	if !ok {
		return 0
	}
	return v.typed.(float64)
}

// Bytes returns the value of a Bytes key in bytes, or 0.
func (c *Config) Bytes(key string) int64 {
	_, v, ok := c.effective(key, Bytes)
	if !ok {
		return 0
	}
	return v.typed.(int64)
}

// StringList returns the items of a List key, or of a String key split at
// commas, or nil.
func (c *Config) StringList(key string) []string {
	ki, v, ok := c.effective(key, List, String)
	if !ok {
		return nil
	}
	if ki.Type == List {
		return slices.Clone(v.typed.([]string))
	}
	var out []string
	for _, s := range strings.Split(v.text, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Secret returns the value of key as a Secret, which does not print.
func (c *Config) Secret(key string) Secret {
	return Secret(c.String(key))
}

// Raw returns the value of key as loaded: the decoded YAML value of a List
// or Object key given in YAML, else the text. ok is false when the key
// itself is not set; defaults and fallbacks do not apply. The result is a
// copy.
func (c *Config) Raw(key string) (any, bool) {
	ki := mustLookup(key)
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.values[ki.Name]
	if !ok {
		return nil, false
	}
	return deepCopy(v.raw), true
}

// IsSet reports whether key itself (under any of its names) was set;
// defaults and fallbacks do not count.
func (c *Config) IsSet(key string) bool {
	ki := mustLookup(key)
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.values[ki.Name]
	return ok
}

// Clone returns an independent copy of c, warnings included.
func (c *Config) Clone() *Config {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := &Config{values: make(map[string]value, len(c.values)), warnings: slices.Clone(c.warnings)}
	for k, v := range c.values {
		v.typed, v.raw = deepCopy(v.typed), deepCopy(v.raw)
		n.values[k] = v
	}
	return n
}

// Entries returns every key that is set or has a default, sorted by key,
// with the values of sensitive keys (see IsSensitive) masked as "******".
func (c *Config) Entries() []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Entry
	for _, ki := range allKeys() {
		v, ok := c.values[ki.Name]
		if !ok {
			v, ok = ki.def, ki.hasDef
		}
		if !ok {
			continue
		}
		text := v.text
		if text != "" && IsSensitive(ki.Name) {
			text = maskedValue
		}
		out = append(out, Entry{Key: ki.Name, Value: text})
	}
	return out
}

func didYouMean(key string) string {
	if s := suggest(key); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

func deprecatedWarning(old, canonical string) string {
	return fmt.Sprintf("configuration key %q is deprecated: use %q", old, canonical)
}

// JobKeys returns the canonical names of the keys a job may set for
// itself (Key.Job), sorted.
func JobKeys() []string {
	registry.RLock()
	defer registry.RUnlock()
	var out []string
	for name, ki := range registry.keys {
		if ki.Job {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// WithJobSettings returns a copy of c with a job's own settings applied.
// Every key must be one a job may set (Key.Job); an error names the first
// that is not, or whose value is invalid.
func (c *Config) WithJobSettings(settings map[string]string) (*Config, error) {
	out := c.Clone()
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ki, _ := lookup(k)
		switch {
		case ki == nil:
			return nil, fmt.Errorf("job setting %q: unknown configuration key%s", k, didYouMean(k))
		case !ki.Job:
			return nil, fmt.Errorf("job setting %q: a cluster setting, which cannot apply to one job (a job may set %s); set it in the cluster's configuration instead",
				k, strings.Join(JobKeys(), ", "))
		}
		if err := out.Set(k, settings[k]); err != nil {
			return nil, fmt.Errorf("job setting %w", err)
		}
	}
	return out, nil
}
