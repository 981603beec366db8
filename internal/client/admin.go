package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
)

// JoinToken is a join token created by the JobManager (automatic mode).
// Token is the secret: print it once, never log it.
type JoinToken = restapi.JoinToken

// NewJoinToken asks the JobManager for a join token (POST
// /admin/join-tokens). ttl 0 and maxUses < 0 take the JobManager's
// configured defaults; keepOld keeps the current tokens valid.
func (c *Client) NewJoinToken(ctx context.Context, ttl time.Duration, maxUses int, keepOld bool) (*JoinToken, error) {
	req := restapi.NewJoinTokenRequest{KeepOld: keepOld}
	if ttl > 0 {
		req.TTL = ttl.String()
	}
	if maxUses >= 0 {
		req.MaxUses = &maxUses
	}
	body, _ := json.Marshal(req)
	var out JoinToken
	if err := c.do(ctx, http.MethodPost, "/admin/join-tokens", bytes.NewReader(body), "application/json", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revocation is what revoking a TaskManager did.
type Revocation = restapi.Revocation

// RevokeTaskManager revokes a TaskManager's certificates and drops its
// registration (POST /admin/taskmanagers/{id}/revoke).
func (c *Client) RevokeTaskManager(ctx context.Context, id string) (*Revocation, error) {
	var out Revocation
	if err := c.do(ctx, http.MethodPost, "/admin/taskmanagers/"+url.PathEscape(id)+"/revoke", nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
