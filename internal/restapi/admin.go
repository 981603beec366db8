package restapi

import "time"

// NewJoinTokenRequest is the body of POST /admin/join-tokens; every field
// is optional.
type NewJoinTokenRequest struct {
	// TTL is a Go duration ("1h"); empty: security.cluster.join-token.ttl.
	TTL string `json:"ttl,omitempty"`
	// MaxUses: nil is security.ssl.internal.auto.join-token.max-uses, 0
	// is unbounded.
	MaxUses *int `json:"max-uses,omitempty"`
	// KeepOld keeps the current tokens valid (default: rotate them out).
	KeepOld bool `json:"keep-old"`
}

// JoinToken is the answer to POST /admin/join-tokens (automatic mode).
// Token is the secret: print it once, never log it.
type JoinToken struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
	MaxUses int       `json:"max-uses"`
	File    string    `json:"file"`
	Retired []string  `json:"retired"`
}

// Revocation is the answer to POST /admin/taskmanagers/{id}/revoke: what
// revoking a TaskManager did.
type Revocation struct {
	TaskManager string   `json:"taskmanager"`
	Serials     []string `json:"serials"`
	// Tokens are the join tokens that issued the revoked certificates.
	Tokens []string `json:"join-tokens"`
}
