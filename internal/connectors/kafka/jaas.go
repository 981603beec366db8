package kafka

import (
	"fmt"
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
		return nil, fmt.Errorf("unknown login module %q: want %s, %s or %s", j.Module, ModulePlain, ModuleSCRAM, ModuleKrb5)
	}
	switch strings.ToLower(fields[1]) {
	case "required", "requisite", "sufficient", "optional":
	default:
		return nil, fmt.Errorf("after the login module, want the flag required")
	}
	for _, f := range fields[2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("option %q: want key=\"value\"", strings.SplitN(f, "=", 2)[0])
		}
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

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		v = strings.ReplaceAll(v, `\"`, `"`)
		v = strings.ReplaceAll(v, `\\`, `\`)
	}
	return v
}
