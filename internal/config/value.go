package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// value is a validated setting.
type value struct {
	text   string // string form, for String and Entries
	typed  any    // string, int64, bool, time.Duration, []string or any (Object)
	raw    any    // as loaded: the text, or the decoded YAML value
	origin string // where it was set, e.g. "conf/config.yaml:3"
}

// parseText parses and validates s for key k. Errors say what k accepts
// but not which key or file: the caller adds those.
func parseText(k *Key, s string) (value, error) {
	v, err := parseTyped(k, s)
	if err == nil && k.Check != nil {
		err = k.Check(v.typed)
	}
	return v, err
}

// parseTyped parses s as k's Type and checks Enum, Min and Max.
func parseTyped(k *Key, s string) (value, error) {
	v := value{text: s, raw: s}
	t := strings.TrimSpace(s)
	switch k.Type {
	case String:
		e, err := checkEnum(k, t)
		if err != nil {
			return v, err
		}
		v.text, v.typed = e, e
	case Int:
		n, err := strconv.ParseInt(t, 10, 64)
		switch {
		case isPortKey(k.Name) && (err != nil || !inRange(k, n)):
			return v, fmt.Errorf("%q is not a valid port: want an integer%s", s, rangeText(k, ""))
		case err != nil:
			return v, fmt.Errorf("%q is not a valid integer: want an integer%s", s, rangeText(k, ""))
		case !inRange(k, n):
			return v, fmt.Errorf("%q is out of range: want an integer%s", s, rangeText(k, ""))
		}
		v.typed = n
	case Bool:
		switch strings.ToLower(t) {
		case "true":
			v.typed = true
		case "false":
			v.typed = false
		default:
			return v, fmt.Errorf("%q is not a valid boolean: want true or false", s)
		}
	case Duration:
		d, err := ParseDuration(t)
		if err != nil {
			return v, fmt.Errorf("%q is not a valid duration: want an integer and a unit, "+
				`e.g. "500 ms", "10 s", "1 min", "2 h", "1 d" (a bare number is milliseconds)`, s)
		}
		ms := d.Milliseconds()
		if (k.Min == nil && d < 0) || !inRange(k, ms) {
			return v, fmt.Errorf("%q is out of range: want a duration%s", s, rangeText(k, " ms"))
		}
		v.typed = d
	case Bytes:
		n, err := ParseBytes(t)
		if err != nil {
			return v, fmt.Errorf("%q is not a valid memory size: want an integer and an optional unit "+
				`(b, kb, mb, gb, tb; powers of 1024), e.g. "64 mb"`, s)
		}
		if !inRange(k, n) {
			return v, fmt.Errorf("%q is out of range: want a memory size%s", s, rangeText(k, " bytes"))
		}
		v.typed = n
	case List:
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			var items []string
			if err := yaml.Unmarshal([]byte(t), &items); err != nil {
				return v, fmt.Errorf("%q is not a valid list: want a comma-separated string or a list of strings", s)
			}
			return parseList(k, items, s)
		}
		var items []string
		for _, it := range strings.Split(t, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		return parseList(k, items, s)
	case Float:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return v, fmt.Errorf("%q is not a valid number: want a decimal number such as 1.5", s)
		}
		v.typed = f
	case Object:
		var obj any
		if err := yaml.Unmarshal([]byte(s), &obj); err != nil {
			return v, fmt.Errorf("%q is not a valid YAML value: %v", s, trimYAMLError(err))
		}
		return objectValue(obj), nil
	}
	return v, nil
}

// parseList validates the items of a List key; raw is the value as loaded.
func parseList(k *Key, items []string, raw any) (value, error) {
	out := make([]string, len(items))
	for i, it := range items {
		e, err := checkEnum(k, strings.TrimSpace(it))
		if err != nil {
			return value{}, err
		}
		out[i] = e
	}
	return value{text: strings.Join(out, ","), typed: out, raw: raw}, nil
}

// objectValue wraps a decoded YAML value of an Object key.
func objectValue(obj any) value {
	text := fmt.Sprint(obj)
	if b, err := json.Marshal(obj); err == nil {
		text = string(b)
	}
	if obj == nil {
		text = ""
	}
	return value{text: text, typed: obj, raw: obj}
}

// checkEnum returns the Enum spelling of s, or s when k has no Enum.
func checkEnum(k *Key, s string) (string, error) {
	if len(k.Enum) == 0 {
		return s, nil
	}
	for _, e := range k.Enum {
		if strings.EqualFold(e, s) {
			return e, nil
		}
	}
	return s, fmt.Errorf("%q is not one of: %s", s, strings.Join(k.Enum, ", "))
}

func inRange(k *Key, n int64) bool {
	return (k.Min == nil || n >= *k.Min) && (k.Max == nil || n <= *k.Max)
}

// rangeText describes k's bounds, e.g. " 0..65535" or " >= 1 ms".
func rangeText(k *Key, unit string) string {
	switch {
	case k.Min != nil && k.Max != nil:
		return fmt.Sprintf(" %d..%d%s", *k.Min, *k.Max, unit)
	case k.Min != nil:
		return fmt.Sprintf(" >= %d%s", *k.Min, unit)
	case k.Max != nil:
		return fmt.Sprintf(" <= %d%s", *k.Max, unit)
	case k.Type == Duration:
		return " >= 0"
	}
	return ""
}

// deepCopy copies the maps and slices of a decoded YAML value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case map[any]any:
		m := make(map[any]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = deepCopy(e)
		}
		return s
	case []string:
		return append([]string(nil), v...)
	}
	return v
}

// isPortKey reports whether name is a port ("rest.port", "x.data-port"),
// for a clearer message.
func isPortKey(name string) bool {
	n := strings.ToLower(name)
	return n == "port" || strings.HasSuffix(n, ".port") || strings.HasSuffix(n, "-port")
}
