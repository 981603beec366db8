package config

import (
	"fmt"
	"os"
	"slices"
)

// SetKeys returns the canonical names of the keys that are set (not
// defaults), sorted.
func (c *Config) SetKeys() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keys := make([]string, 0, len(c.values))
	for k := range c.values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Unset removes key's own value (under any of its names); its fallbacks and
// default apply again.
func (c *Config) Unset(key string) {
	ki := mustLookup(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.values, ki.Name)
}

// Merge sets every value set in other on c (other's win) and appends
// other's warnings.
func (c *Config) Merge(other *Config) {
	other.mu.RLock()
	values := make(map[string]value, len(other.values))
	for k, v := range other.values {
		v.typed, v.raw = deepCopy(v.typed), deepCopy(v.raw)
		values[k] = v
	}
	warnings := slices.Clone(other.warnings)
	other.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range values {
		c.values[k] = v
	}
	c.warnings = append(c.warnings, warnings...)
}

// LoadLayers is Load with more YAML files applied after the first and
// before the overrides, each winning over the ones before it. Kubernetes
// sessions use it to keep secret values (passwords, tokens) in a file of
// their own, mounted from a Secret, apart from the ConfigMap's config.yaml.
func LoadLayers(path string, layers []string, overrides []string) (*Config, error) {
	c, err := Load(path, nil)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, fmt.Errorf("read configuration layer: %w", err)
		}
		lc, err := Parse(data, l)
		if err != nil {
			return nil, err
		}
		c.Merge(lc)
	}
	for _, o := range overrides {
		if err := c.override(o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// KeyNames returns the canonical names of every registered key, sorted.
func KeyNames() []string {
	keys := allKeys()
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Name
	}
	return out
}
