package authz

import (
	"fmt"
	"slices"
	"strings"
)

// ModeKey is the configuration key choosing the authorizers, in order.
const ModeKey = "security.authorization.mode"

// The values of security.authorization.mode.
const (
	ModeAllowAll = "allow-all"
	ModeACL      = "acl"
	ModeWebhook  = "webhook"
	ModeOPA      = "opa"
)

// Modes lists the accepted values of security.authorization.mode.
var Modes = []string{ModeAllowAll, ModeACL, ModeWebhook, ModeOPA}

// ParseModes checks the value of security.authorization.mode and returns
// it lower-cased, in order. An empty list is allow-all (the default).
// allow-all cannot be combined with another mode: before it, the others
// would be pointless, after an ACL it would never be asked, and either way
// the operator meant something else.
func ParseModes(modes []string) ([]string, error) {
	var out []string
	for _, m := range modes {
		m = strings.ToLower(strings.TrimSpace(m))
		if m == "" {
			continue
		}
		if !slices.Contains(Modes, m) {
			return nil, fmt.Errorf("%s: unknown mode %q; use one or more of: %s", ModeKey, m, strings.Join(Modes, ", "))
		}
		if slices.Contains(out, m) {
			return nil, fmt.Errorf("%s: mode %q is listed twice", ModeKey, m)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return []string{ModeAllowAll}, nil
	}
	if len(out) > 1 && slices.Contains(out, ModeAllowAll) {
		return nil, fmt.Errorf("%s: %s cannot be combined with other modes (%s); remove it to enforce them",
			ModeKey, ModeAllowAll, strings.Join(out, ", "))
	}
	return out, nil
}
