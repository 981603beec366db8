package jobmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

// decider asks the configured authorizers; decisions made for a request
// are written to its audit log (see withAudit).
type decider struct {
	union authz.Union
	log   *slog.Logger
}

// decide returns whether a may happen, why, and which authorizer said so.
// An error is the caller's 500: never an allow.
func (d *decider) decide(ctx context.Context, a authz.Attributes, audited bool) (bool, string, string, error) {
	dec, reason, by, err := d.union.AuthorizeNamed(ctx, a)
	if err != nil {
		if audited {
			auditDecision(ctx, a, false, by, "authorizer error: "+err.Error())
		}
		return false, "", by, err
	}
	allowed := dec == authz.Allow
	if audited {
		auditDecision(ctx, a, allowed, by, reason)
	}
	return allowed, reason, by, nil
}

// attributes builds the authorization attributes of a request.
func attributes(r *http.Request, verb, resource string) authz.Attributes {
	u, _ := authn.UserFrom(r.Context())
	return authz.Attributes{
		User: u.Name, Groups: u.Groups, Method: u.Method, Verb: verb, Resource: resource,
		Listener: ListenerName(r.Context()), RemoteAddr: r.RemoteAddr, RequestID: RequestID(r.Context()),
	}
}

// jobACL returns the ACL of a job, nil if there is no such job.
func (jm *JobManager) jobACL(id string) *authz.JobACL {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if j, ok := jm.jobs[id]; ok {
		acl := j.acl
		return &acl
	}
	return nil
}

type listAllKey struct{}

// mayView is the per-job filter of the job lists: everything for callers
// who may list jobs, else the jobs each caller may view.
func (rs *restServer) mayView(r *http.Request, j *job) bool {
	if all, _ := r.Context().Value(listAllKey{}).(bool); all {
		return true
	}
	a := attributes(r, "view", "job/"+j.id)
	acl := j.acl
	a.Job = &acl
	ok, _, _, err := rs.sec.authz.decide(r.Context(), a, false)
	return err == nil && ok
}

// dataAccesses lists what a submitted spec reads and writes. Files come
// from the spec's file accesses (absolute, clean paths; relative ones were
// refused): exactly what the TaskManagers will be allowed to open. Attached
// files are the client's own data and need no permission.
func dataAccesses(spec *dataflow.Spec, files []dataflow.FileAccess) []authz.DataAccess {
	var out []authz.DataAccess
	for _, f := range files {
		if f.Attached {
			continue
		}
		verb := "read"
		if f.Write {
			verb = "write"
		}
		out = append(out, authz.DataAccess{Verb: verb, Resource: "file:" + f.Path})
	}
	reads, writes := spec.Resources()
	add := func(verb string, res []string) {
		for _, r := range res {
			if !strings.HasPrefix(r, "file:") {
				out = append(out, authz.DataAccess{Verb: verb, Resource: r})
			}
		}
	}
	add("read", reads)
	add("write", writes)
	return out
}

// authorizeData checks every data access of a submission and returns the
// first refusal. Each access is decided (and audited) on its own, with
// Data holding only that access: were the whole list attached, an
// authorizer that checks Data would deny an allowed read for a forbidden
// write, and the 403 and the audit event would name the read.
func (rs *restServer) authorizeData(r *http.Request, data []authz.DataAccess) (bool, string, error) {
	for _, d := range data {
		a := attributes(r, d.Verb, d.Resource)
		a.Data = []authz.DataAccess{d}
		ok, reason, _, err := rs.sec.authz.decide(r.Context(), a, true)
		if err != nil {
			return false, "", err
		}
		if !ok {
			return false, fmt.Sprintf("the job would %s %s, which %s may not: %s", d.Verb, d.Resource, a.User, reason), nil
		}
	}
	return true, "", nil
}

type canIRequest struct {
	Verb     string `json:"verb"`
	Resource string `json:"resource"`
}

// canI is kubectl auth can-i: may the caller do verb on resource?
func (rs *restServer) canI(w http.ResponseWriter, r *http.Request) {
	var req canIRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Verb == "" || req.Resource == "" {
		writeError(w, http.StatusBadRequest, "want {\"verb\": ..., \"resource\": ...}")
		return
	}
	if !slices.Contains([]string{"view", "list", "submit", "cancel", "savepoint", "admin", "read", "write"}, req.Verb) {
		writeError(w, http.StatusBadRequest, "verb %q: want view, list, submit, cancel, savepoint, admin, read or write", req.Verb)
		return
	}
	a := attributes(r, req.Verb, req.Resource)
	if id, ok := strings.CutPrefix(req.Resource, "job/"); ok {
		a.Job = rs.jm.jobACL(id)
	}
	ok, reason, by, err := rs.sec.authz.decide(r.Context(), a, false)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "authorization failed: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"allowed": ok, "reason": reason, "authorizer": by, "user": a.User, "verb": a.Verb, "resource": a.Resource})
}
