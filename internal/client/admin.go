package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// JoinToken is a join token created by the JobManager (automatic mode).
// Token is the secret: print it once, never log it.
type JoinToken struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
	MaxUses int       `json:"max-uses"`
	File    string    `json:"file"`
	Retired []string  `json:"retired"`
}

// NewJoinToken asks the JobManager for a join token (POST
// /admin/join-tokens). ttl 0 and maxUses < 0 take the JobManager's
// configured defaults; keepOld keeps the current tokens valid.
func (c *Client) NewJoinToken(ctx context.Context, ttl time.Duration, maxUses int, keepOld bool) (*JoinToken, error) {
	req := map[string]any{"keep-old": keepOld}
	if ttl > 0 {
		req["ttl"] = ttl.String()
	}
	if maxUses >= 0 {
		req["max-uses"] = maxUses
	}
	body, _ := json.Marshal(req)
	var out JoinToken
	if err := c.do(ctx, http.MethodPost, "/admin/join-tokens", bytes.NewReader(body), "application/json", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revocation is what revoking a TaskManager did.
type Revocation struct {
	TaskManager string   `json:"taskmanager"`
	Serials     []string `json:"serials"`
	Tokens      []string `json:"join-tokens"`
}

// RevokeTaskManager revokes a TaskManager's certificates and drops its
// registration (POST /admin/taskmanagers/{id}/revoke).
func (c *Client) RevokeTaskManager(ctx context.Context, id string) (*Revocation, error) {
	var out Revocation
	if err := c.do(ctx, http.MethodPost, "/admin/taskmanagers/"+url.PathEscape(id)+"/revoke", nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
