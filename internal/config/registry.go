package config

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Type is the type of a configuration key's value. It decides how a value
// given as text (YAML scalar or -D flag) is parsed and validated.
type Type int

// The types a Key can have.
const (
	String   Type = iota // free text
	Int                  // decimal integer, checked against Key.Min and Key.Max
	Bool                 // true or false, case-insensitive
	Duration             // Flink duration ("10 s", "500 ms", "1 min"); a bare number is milliseconds
	Bytes                // Flink memory size ("64mb", "1 gb", "64 MiB"); units are powers of 1024
	List                 // comma-separated string or YAML list of strings
	Object               // any YAML value, kept as loaded (see Config.Raw)
	Float                // decimal number ("1.5"), checked by Key.Check
)

var typeNames = [...]string{"string", "int", "bool", "duration", "bytes", "list", "object", "float"}

// String returns the lower-case name of the type.
func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// structured reports whether YAML maps and lists under a key of this type
// are its value rather than more keys to flatten.
func (t Type) structured() bool { return t == List || t == Object }

// Key describes a known configuration key.
type Key struct {
	Name    string // canonical dotted name, e.g. "rest.port"
	Type    Type
	Default string // parsed like a user value; "" means no default
	Doc     string
	// Aliases are other names for the same key, accepted silently
	// (e.g. "pekko.ssl.enabled" for "rpc.ssl.enabled").
	Aliases []string
	// Deprecated are old names for the same key; using one is a warning
	// that names the canonical key (e.g. "security.principal").
	Deprecated []string
	// Fallbacks are other keys read, in order, when this key is not set,
	// before the default applies (e.g. "security.ssl.keystore" for
	// "security.ssl.internal.keystore"). They must have the same Type.
	Fallbacks []string
	// Enum, for String and List keys, lists the accepted values
	// (matched case-insensitively, stored with the spelling given here).
	Enum []string
	// Min and Max bound Int keys, Duration keys (in milliseconds) and Bytes
	// keys. A Duration key without Min rejects negative values.
	Min, Max *int64
	// Job marks a key that one job may set for itself (sluice run -D, as
	// flink run -D): its value travels with the submission and overrides
	// the cluster's for that job only.
	Job bool
	// Check, when set, validates a parsed value (string, int64, bool,
	// time.Duration, []string or float64, by Type) beyond Enum, Min and
	// Max. Its error is the whole reason, without the key (the caller adds
	// the key and where it was set): "50 ms is below the minimum of 100 ms".
	Check func(v any) error
}

// keyInfo is a registered key with its parsed default.
type keyInfo struct {
	Key
	def    value
	hasDef bool
}

var registry = struct {
	sync.RWMutex
	keys  map[string]*keyInfo // canonical name → key
	names map[string]string   // canonical, alias or deprecated name → canonical
}{keys: map[string]*keyInfo{}, names: map[string]string{}}

// Register adds a key to the registry. Packages register their keys from
// init functions. It panics on an empty or already registered name (or
// alias), on a Type that does not allow Enum, Min or Max, and on an invalid
// Default: these are programming errors.
func Register(k Key) {
	if k.Name == "" || k.Type < String || k.Type > Float {
		panic(fmt.Sprintf("config: Register(%q): empty name or invalid type", k.Name))
	}
	if len(k.Enum) > 0 && k.Type != String && k.Type != List {
		panic(fmt.Sprintf("config: Register(%q): Enum needs a String or List key", k.Name))
	}
	if (k.Min != nil || k.Max != nil) && k.Type != Int && k.Type != Duration && k.Type != Bytes {
		panic(fmt.Sprintf("config: Register(%q): Min/Max need an Int, Duration or Bytes key", k.Name))
	}
	k.Aliases = slices.Clone(k.Aliases)
	k.Deprecated = slices.Clone(k.Deprecated)
	k.Fallbacks = slices.Clone(k.Fallbacks)
	k.Enum = slices.Clone(k.Enum)
	ki := &keyInfo{Key: k}
	if k.Default != "" {
		v, err := parseText(&ki.Key, k.Default)
		if err != nil {
			panic(fmt.Sprintf("config: Register(%q): default: %v", k.Name, err))
		}
		v.origin = "default"
		ki.def, ki.hasDef = v, true
	}

	registry.Lock()
	defer registry.Unlock()
	names := append([]string{k.Name}, k.Aliases...)
	names = append(names, k.Deprecated...)
	for _, n := range names {
		if _, dup := registry.names[n]; dup {
			panic(fmt.Sprintf("config: Register(%q): %q is already registered", k.Name, n))
		}
	}
	for _, fb := range k.Fallbacks {
		if f, ok := registry.keys[fb]; ok && f.Type != k.Type {
			panic(fmt.Sprintf("config: Register(%q): fallback %q has type %s", k.Name, fb, f.Type))
		}
	}
	for _, n := range names {
		registry.names[n] = k.Name
	}
	registry.keys[k.Name] = ki
}

// Lookup returns the registered key for name, which may be the canonical
// name, an alias or a deprecated name.
func Lookup(name string) (Key, bool) {
	ki, _ := lookup(name)
	if ki == nil {
		return Key{}, false
	}
	k := ki.Key
	k.Aliases = slices.Clone(k.Aliases)
	k.Deprecated = slices.Clone(k.Deprecated)
	k.Fallbacks = slices.Clone(k.Fallbacks)
	k.Enum = slices.Clone(k.Enum)
	return k, true
}

// lookup resolves name; deprecated reports that name is a deprecated name.
// Registered keys are never modified, so the result can be read unlocked.
func lookup(name string) (ki *keyInfo, deprecated bool) {
	registry.RLock()
	defer registry.RUnlock()
	canon, ok := registry.names[name]
	if !ok {
		return nil, false
	}
	ki = registry.keys[canon]
	return ki, slices.Contains(ki.Deprecated, name)
}

// mustLookup is lookup for getters: an unknown key is a programming error.
func mustLookup(name string) *keyInfo {
	ki, _ := lookup(name)
	if ki == nil {
		panic(fmt.Sprintf("config: unregistered key %q", name))
	}
	return ki
}

// allKeys returns the registered keys sorted by name.
func allKeys() []*keyInfo {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]*keyInfo, 0, len(registry.keys))
	for _, ki := range registry.keys {
		out = append(out, ki)
	}
	slices.SortFunc(out, func(a, b *keyInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// suggest returns the known name closest to name (case-insensitively)
// within edit distance 2, or "".
func suggest(name string) string {
	registry.RLock()
	defer registry.RUnlock()
	lower := strings.ToLower(name)
	best, bestDist := "", 3
	for n := range registry.names {
		d := editDistance(lower, strings.ToLower(n), 3)
		if d < bestDist || (d == bestDist && d < 3 && n < best) {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, or limit when
// it is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
