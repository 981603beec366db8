package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// MaxResponse bounds an authorization service's answer.
const MaxResponse = 1 << 20

// PostJSON POSTs body to endpoint and returns the status code and the
// answer, which must arrive within timeout: an answer completed after the
// deadline is an error, never a decision (it could be a late allow the
// service sent after giving up on a slow check). Shared by the webhook and
// OPA authorizers.
func PostJSON(ctx context.Context, client *http.Client, endpoint string, body []byte, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("no answer within %s", timeout)
		}
		// url.Error repeats the method and URL; the cause is what matters.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	// Check the deadline even when the read succeeded: a transport may
	// still deliver bytes that raced with the cancellation.
	if ctx.Err() != nil {
		return 0, nil, fmt.Errorf("no answer within %s", timeout)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	if len(data) > MaxResponse {
		return 0, nil, fmt.Errorf("answer larger than %d bytes", MaxResponse)
	}
	return resp.StatusCode, data, nil
}
