package config

import (
	"strconv"
	"strings"
)

// maskedValue replaces sensitive values in Entries, as Flink does.
const maskedValue = "******"

// sensitiveParts are Flink's markers of a sensitive key
// (GlobalConfiguration.SENSITIVE_KEYS), matched case-insensitively anywhere
// in the key.
var sensitiveParts = []string{
	"password", "secret", "fs.azure.account.key", "apikey", "auth-params",
	"service-key", "token", "basic-auth", "jaas.config", "http-headers",
}

// IsSensitive reports whether the value of key must not be shown, by
// Flink's rule: the key contains one of password, secret,
// fs.azure.account.key, apikey, auth-params, service-key, token,
// basic-auth, jaas.config or http-headers. Paths to key files (keystore,
// keytab) are not sensitive.
func IsSensitive(key string) bool {
	k := strings.ToLower(key)
	for _, p := range sensitiveParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// Secret is a sensitive string. It prints and marshals as "<secret>" so it
// cannot leak into logs or config dumps; an empty Secret prints as "" so an
// unset value stays visible. Value returns the real value.
type Secret string

const secretText = "<secret>"

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String returns "<secret>", or "" when s is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return secretText
}

// GoString returns the same as String, so %#v does not leak either.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON encodes s as "<secret>" (or "" when empty).
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalYAML encodes s as "<secret>" (or "" when empty).
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText encodes s as "<secret>" (or "" when empty), for encoders
// such as log/slog's JSON handler that prefer TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// HoldsSecret reports whether a value, whatever key it is under, carries a credential: it
// names one of the sensitive markers followed by a value (a JAAS string's password="...", a
// libpq key=value string's password=..., token=...), or it is a URL with a password in its
// user information (postgresql://alice:pw@host/db). Job parameters are shown by value, and a
// parameter may be substituted into a sensitive option under any name, so they are masked by
// this as well as by IsSensitive of their name.
func HoldsSecret(value string) bool {
	v := strings.ToLower(value)
	for _, p := range sensitiveParts {
		for i := 0; ; {
			j := strings.Index(v[i:], p)
			if j < 0 {
				break
			}
			rest := strings.TrimLeft(v[i+j+len(p):], " \t\"'")
			if strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, ":") {
				return true
			}
			i += j + len(p)
		}
	}
	if scheme, rest, ok := strings.Cut(value, "://"); ok && scheme != "" && !strings.ContainsAny(scheme, "/ ") {
		authority, _, _ := strings.Cut(rest, "/")
		if userinfo, _, ok := strings.Cut(authority, "@"); ok && strings.Contains(userinfo, ":") {
			return true
		}
	}
	return false
}
