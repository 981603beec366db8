package config

import (
	"os"
	"strings"
	"testing"
)

func TestNamesKey(t *testing.T) {
	for _, tc := range []struct {
		msg, key string
		want     bool
	}{
		{"security.authorization.mode: unknown", "security.authorization.mode", true},
		{"set security.ssl.rest.keystore.", "security.ssl.rest.keystore", true},
		{"set security.ssl.rest.keystore", "security.ssl.rest", false},
		{"(security.ssl.rest.keystore)", "security.ssl.rest.keystore", true},
		{"xsecurity.ssl.rest.keystore", "security.ssl.rest.keystore", false},
	} {
		if got := NamesKey(tc.msg, tc.key); got != tc.want {
			t.Errorf("NamesKey(%q, %q) = %v", tc.msg, tc.key, got)
		}
	}
	err := KeyError("security.authorization.mode", os.ErrNotExist)
	if err.Error() != "security.authorization.mode: file does not exist" {
		t.Errorf("KeyError prefixes: %v", err)
	}
	if err := KeyError("a.b", KeyError("a.b", os.ErrNotExist)); strings.Count(err.Error(), "a.b") != 1 {
		t.Errorf("KeyError doubles the key: %v", err)
	}
}
