// Package client talks to a JobManager's REST API for the CLI.
package client

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
)

// Client is a REST client of one JobManager.
type Client struct {
	base    string
	http    *http.Client
	token   string
	hasCert bool
	// certChain is the client certificate (--cert) and the intermediates
	// in its file, to explain a refusal.
	certChain []*x509.Certificate
	certFile  string
	krb       *kerberosAuth // nil without --kerberos

	retries    int // on a refused connection
	retryDelay time.Duration
}

// New returns a client for the JobManager at base (http://host:port),
// without credentials and trusting the system roots for https.
func New(base string) (*Client, error) {
	return NewWithOptions(Options{URL: base})
}

// URL is the JobManager's base URL.
func (c *Client) URL() string { return c.base }

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for attempt := 1; ; attempt++ {
		err := c.send(ctx, req, path, out)
		if err == nil || attempt > c.retries || !connRefused(err) {
			return err
		}
		if attempt == 1 {
			slog.Info("the JobManager refuses connections; retrying", "url", c.base,
				"attempts", c.retries, "delay", c.retryDelay, "keys", "rest.retry.max-attempts, rest.retry.delay")
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(c.retryDelay):
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return err
			}
		} else if req.Body != nil && req.Body != http.NoBody {
			return err // a streamed body cannot be sent twice
		}
	}
}

// connRefused reports whether err is a refused TCP connection: the
// request never reached the server, so sending it again is safe.
func connRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// send sends one request and decodes its answer.
func (c *Client) send(ctx context.Context, req *http.Request, path string, out any) error {
	method := req.Method
	if c.krb != nil {
		if err := c.krb.sign(req); err != nil {
			return fmt.Errorf("%s %s%s: %w", method, c.base, path, err)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s%s: %w", method, c.base, path, ctx.Err())
		}
		return c.explainTransport(ctx, err, time.Now())
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s from %s: %w", method, path, c.base, err)
	}
	if resp.StatusCode >= 300 {
		return c.explainStatus(resp, data, time.Now())
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Submit sends a job: its spec, parameters, parallelism (0: the cluster's
// default) and files to attach (read from local paths, named by base name).
func (c *Client) Submit(ctx context.Context, spec []byte, params map[string]string, parallelism int, files []string) (string, error) {
	return c.SubmitJob(ctx, Submission{Spec: spec, Params: params, Parallelism: parallelism, Files: files})
}

// Submission is a job to submit, with who else may see and change it
// (Spark's view and modify lists; the submitter owns the job).
type Submission struct {
	Spec                      []byte
	Params                    map[string]string
	Parallelism               int
	Files                     []string
	ViewUsers, ViewGroups     []string
	ModifyUsers, ModifyGroups []string
	// Config is the job's own configuration (sluice run -D key=value for
	// the keys a job may set).
	Config map[string]string
	// SavepointPath is the savepoint the job starts from (sluice run
	// --fromSavepoint); AllowNonRestoredState drops the savepoint's state of
	// operators the job does not have (--allowNonRestoredState).
	SavepointPath         string
	AllowNonRestoredState bool
}

// SubmitJob sends a job and returns its id.
func (c *Client) SubmitJob(ctx context.Context, s Submission) (string, error) {
	res, err := c.SubmitJobResult(ctx, s)
	return res.ID, err
}

// Submitted is the JobManager's answer to a submission: the job's id and
// what the submitter should know about how the job will run, such as a
// source that cannot replay its input under checkpointing (at most once).
type Submitted = restapi.Submitted

// SubmitJobResult sends a job and returns its id and the JobManager's
// warnings about it.
func (c *Client) SubmitJobResult(ctx context.Context, s Submission) (Submitted, error) {
	spec, params, parallelism, files := s.Spec, s.Params, s.Parallelism, s.Files
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("spec", "job.yaml")
	w.Write(spec)
	pj, _ := json.Marshal(params)
	_ = mw.WriteField("parameters", string(pj))
	if parallelism > 0 {
		_ = mw.WriteField("parallelism", fmt.Sprint(parallelism))
	}
	if len(s.Config) > 0 {
		cj, _ := json.Marshal(s.Config)
		_ = mw.WriteField("config", string(cj))
	}
	if s.SavepointPath != "" {
		_ = mw.WriteField("savepointPath", s.SavepointPath)
	}
	if s.AllowNonRestoredState {
		_ = mw.WriteField("allowNonRestoredState", "true")
	}
	for name, list := range map[string][]string{"view-users": s.ViewUsers, "view-groups": s.ViewGroups, "modify-users": s.ModifyUsers, "modify-groups": s.ModifyGroups} {
		if len(list) > 0 {
			_ = mw.WriteField(name, strings.Join(list, ","))
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return Submitted{}, fmt.Errorf("--file %s: %w", f, err)
		}
		w, _ := mw.CreateFormFile("file", filepath.Base(f))
		w.Write(data)
	}
	mw.Close()
	var out Submitted
	if err := c.do(ctx, http.MethodPost, "/jobs", &buf, mw.FormDataContentType(), &out); err != nil {
		return Submitted{}, err
	}
	return out, nil
}

// JobSummary is one entry of GET /jobs/overview.
type JobSummary = restapi.JobSummary

// Jobs lists the jobs the caller may see.
func (c *Client) Jobs(ctx context.Context) ([]JobSummary, error) {
	var out restapi.JobsOverview
	err := c.do(ctx, http.MethodGet, "/jobs/overview", nil, "", &out)
	return out.Jobs, err
}

// Vertex is a vertex of GET /jobs/{id}.
type Vertex = restapi.JobVertex

// Job is GET /jobs/{id}.
type Job = restapi.JobDetails

// Job returns one job's details.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id), nil, "", &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Cancel asks the JobManager to cancel a job.
func (c *Client) Cancel(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPatch, "/jobs/"+url.PathEscape(id)+"?mode=cancel", nil, "", nil)
}

// Get fetches any JSON endpoint into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, "", out)
}

// Identity is who the JobManager takes the caller for (GET /whoami).
type Identity = restapi.Identity

// WhoAmI asks the JobManager who it takes the caller for.
func (c *Client) WhoAmI(ctx context.Context) (*Identity, error) {
	var id Identity
	if err := c.do(ctx, http.MethodGet, "/whoami", nil, "", &id); err != nil {
		return nil, err
	}
	return &id, nil
}

// CanI asks whether the caller may do verb on resource (POST /auth/can-i).
func (c *Client) CanI(ctx context.Context, verb, resource string) (allowed bool, reason string, err error) {
	body, _ := json.Marshal(map[string]string{"verb": verb, "resource": resource})
	var out struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	if err := c.do(ctx, http.MethodPost, "/auth/can-i", bytes.NewReader(body), "application/json", &out); err != nil {
		return false, "", err
	}
	return out.Allowed, out.Reason, nil
}

// Terminal reports whether a job state is final.
func Terminal(state string) bool {
	return state == "FINISHED" || state == "CANCELED" || state == "FAILED"
}

// Wait polls a job until it reaches a final state.
func (c *Client) Wait(ctx context.Context, id string) (*Job, error) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if Terminal(j.State) {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-t.C:
		}
	}
}
