package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
)

// Savepoint operation states (status.id of GET /jobs/{id}/savepoints/{triggerid}).
const (
	SavepointInProgress = restapi.InProgress
	SavepointCompleted  = restapi.Completed
)

// SavepointStatus is GET /jobs/{id}/savepoints/{triggerid}, in Flink's shape:
// COMPLETED with operation.location, or with operation.failure-cause when
// the savepoint failed.
type SavepointStatus = restapi.SavepointStatus

// TriggerSavepoint asks for a savepoint of a job (POST /jobs/{id}/savepoints)
// into targetDir (empty: the cluster's state.savepoints.dir); cancelJob ends
// the job once it is taken. It returns the trigger id to poll.
func (c *Client) TriggerSavepoint(ctx context.Context, jobID, targetDir string, cancelJob bool) (string, error) {
	body := restapi.SavepointRequest{TargetDirectory: targetDir, CancelJob: cancelJob}
	return c.trigger(ctx, "/jobs/"+url.PathEscape(jobID)+"/savepoints", body)
}

// StopWithSavepoint stops a job with a savepoint (POST /jobs/{id}/stop, with
// Flink's field names) into targetDir (empty: state.savepoints.dir); drain
// ends its input first, so windows and bounded aggregates emit. It returns
// the trigger id, polled at the savepoints path.
func (c *Client) StopWithSavepoint(ctx context.Context, jobID, targetDir string, drain bool) (string, error) {
	body := restapi.StopRequest{TargetDirectory: targetDir, Drain: drain}
	return c.trigger(ctx, "/jobs/"+url.PathEscape(jobID)+"/stop", body)
}

func (c *Client) trigger(ctx context.Context, path string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	var out restapi.SavepointTriggered
	if err := c.do(ctx, http.MethodPost, path, bytes.NewReader(b), "application/json", &out); err != nil {
		return "", err
	}
	if out.RequestID == "" {
		return "", fmt.Errorf("POST %s%s: the answer has no request-id", c.base, path)
	}
	return out.RequestID, nil
}

// SavepointStatus reads the state of a savepoint operation.
func (c *Client) SavepointStatus(ctx context.Context, jobID, triggerID string) (*SavepointStatus, error) {
	var st SavepointStatus
	path := "/jobs/" + url.PathEscape(jobID) + "/savepoints/" + url.PathEscape(triggerID)
	if err := c.do(ctx, http.MethodGet, path, nil, "", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SavepointFailedError is a savepoint the JobManager reports as failed.
type SavepointFailedError struct {
	JobID, TriggerID, Message string
}

func (e *SavepointFailedError) Error() string {
	return fmt.Sprintf("savepoint of job %s failed: %s", e.JobID, e.Message)
}

// WaitSavepoint polls a savepoint operation until it completes and returns
// the savepoint's location. progress, when set, is called with the state
// after each poll. A failed savepoint is a *SavepointFailedError.
func (c *Client) WaitSavepoint(ctx context.Context, jobID, triggerID string, progress func(state string, waited time.Duration)) (string, error) {
	start := time.Now()
	// Short first, for the savepoint of a small job; then at most every
	// second, so a long one costs the JobManager little.
	wait := 100 * time.Millisecond
	for {
		st, err := c.SavepointStatus(ctx, jobID, triggerID)
		if err != nil {
			return "", err
		}
		if st.Status.ID == SavepointCompleted {
			switch {
			case st.Operation != nil && st.Operation.FailureCause != nil:
				msg := st.Operation.FailureCause.Message
				if msg == "" {
					msg = st.Operation.FailureCause.Class
				}
				if msg == "" {
					msg = "no reason given"
				}
				return "", &SavepointFailedError{JobID: jobID, TriggerID: triggerID, Message: msg}
			case st.Operation == nil || st.Operation.Location == "":
				return "", fmt.Errorf("savepoint of job %s: the JobManager reports it completed without a location", jobID)
			}
			return st.Operation.Location, nil
		}
		if progress != nil {
			progress(st.Status.ID, time.Since(start))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
