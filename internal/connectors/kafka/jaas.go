package kafka

import (
	"fmt"
	"slices"
	"strings"
)

// JAAS login modules a sasl.jaas.config may name.
const (
	ModulePlain = "org.apache.kafka.common.security.plain.PlainLoginModule"
	ModuleSCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
	ModuleKrb5  = "com.sun.security.auth.module.Krb5LoginModule"
)

// JAAS is a parsed sasl.jaas.config: `MODULE FLAG key=value ...;`.
type JAAS struct {
	Module   string
	Username string
	Password string // may be file:PATH; never shown
	// Krb5LoginModule
	Principal    string
	KeyTab       string
	UseKeyTab    bool
	UseTicket    bool // useTicketCache=true
	TokenAuth    bool // ScramLoginModule tokenauth=true: the username/password are a delegation token
	ServiceName  string
	otherOptions []string
}

// ParseJAAS parses one login module entry. Errors never quote values: the string holds a
// password.
func ParseJAAS(s string) (*JAAS, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, ";")
	fields, err := splitJAAS(s)
	if err != nil {
		return nil, err
	}
	if len(fields) < 2 {
		return nil, fmt.Errorf("want `<LoginModule class> required key=\"value\" ...;`")
	}
	j := &JAAS{Module: fields[0]}
	switch j.Module {
	case ModulePlain, ModuleSCRAM, ModuleKrb5:
	default:
		if !javaClassName(j.Module) {
			// Not a class name: perhaps the module was left out and this is an option
			// (password="..."), which must not be shown.
			return nil, fmt.Errorf("the string must start with the login module's class name: want %s, %s or %s", ModulePlain, ModuleSCRAM, ModuleKrb5)
		}
		return nil, fmt.Errorf("unknown login module %q: want %s, %s or %s", j.Module, ModulePlain, ModuleSCRAM, ModuleKrb5)
	}
	switch strings.ToLower(fields[1]) {
	case "required", "requisite", "sufficient", "optional":
	default:
		return nil, fmt.Errorf("after the login module, want the flag required")
	}
	seen := map[string]bool{}
	for n, f := range fields[2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			// The text may be the rest of a password with a space in it: name the option
			// only when it is one of the known keys.
			if slices.Contains(jaasOptions, f) {
				return nil, fmt.Errorf("option %s: want %s=\"value\"", f, f)
			}
			return nil, fmt.Errorf("option %d after the flag has no '=': want key=\"value\", with values holding spaces in double quotes", n+1)
		}
		if seen[k] {
			// Which of two passwords would the broker see? Say so rather than pick one.
			if slices.Contains(jaasOptions, k) {
				return nil, fmt.Errorf("option %s is given twice: give it once", k)
			}
			return nil, fmt.Errorf("option %d after the flag repeats an earlier option: give each once", n+1)
		}
		seen[k] = true
		v = unquote(v)
		switch k {
		case "username":
			j.Username = v
		case "password":
			j.Password = v
		case "principal":
			j.Principal = v
		case "keyTab":
			j.KeyTab = v
		case "useKeyTab":
			j.UseKeyTab = v == "true"
		case "useTicketCache":
			j.UseTicket = v == "true"
		case "tokenauth":
			j.TokenAuth = v == "true"
		case "serviceName":
			j.ServiceName = v
		default:
			j.otherOptions = append(j.otherOptions, k)
		}
	}
	switch j.Module {
	case ModulePlain, ModuleSCRAM:
		if j.Username == "" || j.Password == "" {
			return nil, fmt.Errorf("%s needs username=\"...\" and password=\"...\"", j.Module)
		}
	case ModuleKrb5:
		if j.UseKeyTab && (j.KeyTab == "" || j.Principal == "") {
			return nil, fmt.Errorf("%s with useKeyTab=true needs keyTab=\"PATH\" and principal=\"NAME@REALM\"", j.Module)
		}
	}
	return j, nil
}

// splitJAAS splits on spaces outside double quotes.
func splitJAAS(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && quoted && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
		case c == '"':
			quoted = !quoted
			cur.WriteByte(c)
		case (c == ' ' || c == '\t' || c == '\n' || c == '\r') && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated double quote")
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

// jaasOptions are the option keys ParseJAAS reads.
var jaasOptions = []string{"username", "password", "principal", "keyTab", "useKeyTab", "useTicketCache", "tokenauth", "serviceName"}

// javaClassName reports whether s looks like a Java class name (what a login module is).
func javaClassName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '$') {
			return false
		}
	}
	return true
}

// unquote strips a value's double quotes and reads its escapes in one pass: \" is a quote,
// \\ a backslash; a backslash before anything else stays.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
