package config

import (
	"fmt"
	"regexp"
	"strings"
)

// KeyError ties err to the configuration key the user must fix: "key: err",
// unless err names the key already, as errors from the code that reads a
// key usually do. Prefixing those again gives "k: k: ..." and hides which
// part of the message is the cause.
func KeyError(key string, err error) error {
	if err == nil || NamesKey(err.Error(), key) {
		return err
	}
	return fmt.Errorf("%s: %w", key, err)
}

// NamesKey reports whether msg names the key as a whole word: naming
// security.ssl.rest.keystore does not name security.ssl.rest.
func NamesKey(msg, key string) bool {
	for i := 0; ; {
		j := strings.Index(msg[i:], key)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(key)
		if (start == 0 || !keyChar(msg[start-1])) && (end == len(msg) || !keyChar(msg[end]) || msg[end] == '.' && (end+1 == len(msg) || !keyChar(msg[end+1]))) {
			return true
		}
		i = end
	}
}

func keyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

var keyLikeRE = regexp.MustCompile(`[a-z][a-z0-9-]*(\.[a-z0-9-]+)+`)

// RepeatedKeys lists the registered configuration keys msg names more
// than once, for tests that keep error messages from repeating a key.
func RepeatedKeys(msg string) []string {
	seen := map[string]int{}
	var out []string
	for _, k := range keyLikeRE.FindAllString(msg, -1) {
		k = strings.TrimRight(k, ".")
		if _, ok := Lookup(k); !ok {
			continue
		}
		if seen[k]++; seen[k] == 2 {
			out = append(out, k)
		}
	}
	return out
}
