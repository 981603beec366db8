package jobmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/restapi"
	"github.com/sluice-dev/sluice/internal/security/authn"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 1 << 20

type restServer struct {
	jm        *JobManager
	sec       *restSecurity // nil in tests that only walk the router
	mux       *http.ServeMux
	byPattern map[string]*route
}

// newREST builds the router of the REST API; sec secures the handler
// chains buildHandlerChain puts in front of it.
func (jm *JobManager) newREST(sec *restSecurity) *restServer {
	rs := &restServer{jm: jm, sec: sec, mux: http.NewServeMux(), byPattern: map[string]*route{}}
	for _, rt := range rs.routes() {
		rs.mux.Handle(rt.pattern, rt.handler)
		rs.byPattern[rt.pattern] = &rt
	}
	rs.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	})
	return rs
}

func (rs *restServer) serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(rs.jm.log.Handler(), slog.LevelDebug),
	}
	// Serve returns as soon as Shutdown begins; waiting for the shutdown
	// too keeps this goroutine the owner of the one that drains requests.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if ctx.Err() != nil {
		<-drained
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers in Flink's error shape: {"errors": ["..."]}.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string][]string{"errors": {fmt.Sprintf(format, args...)}})
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func durationMS(start, end time.Time) int64 {
	if start.IsZero() {
		return -1
	}
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(start).Milliseconds()
}

func (rs *restServer) overview(w http.ResponseWriter, r *http.Request) {
	jm := rs.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	o := restapi.Overview{SluiceVersion: Version, FlinkVersion: Version, FlinkCommit: revision(), ClusterID: jm.clusterID}
	for _, tm := range jm.tms {
		o.SlotsTotal += tm.slots
		o.SlotsAvailable += tm.free
	}
	counts := map[JobState]int{}
	for _, j := range jm.jobs {
		counts[j.state]++
	}
	o.TaskManagers = len(jm.tms)
	o.JobsRunning = len(jm.jobs) - counts[Finished] - counts[Canceled] - counts[Failed]
	o.JobsFinished = counts[Finished]
	o.JobsCancelled = counts[Canceled]
	o.JobsFailed = counts[Failed]
	o.Kerberos = jm.kerberosOverview()
	writeJSON(w, http.StatusOK, o)
}

func (rs *restServer) dashboardConfig(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	_, offset := now.Zone()
	writeJSON(w, http.StatusOK, restapi.DashboardConfig{
		RefreshInterval: 3000, TimezoneName: time.Local.String(), TimezoneOffset: offset * 1000,
		FlinkVersion: Version, FlinkRevision: revision(), SluiceVersion: Version,
		// Submitting and cancelling are authorized per caller: the dashboard asks
		// POST /auth/can-i before it shows the buttons.
		Features: restapi.Features{WebSubmit: true, WebCancel: true},
		BasePath: ExternalPrefix(r.Context()),
	})
}

func summarize(j *job) restapi.JobSummary {
	s := restapi.JobSummary{ID: j.id, Name: j.name, State: string(j.state), StartTime: ms(j.start), EndTime: ms(j.end),
		Duration: durationMS(j.start, j.end), LastModified: ms(j.modified), Tasks: map[string]int{}}
	for st, n := range j.countTasks() {
		s.Tasks[strings.ToLower(st)] = n
	}
	s.Tasks["total"] = len(j.tasks)
	return s
}

// visibleJobs returns the jobs the caller may view. Authorizers are asked
// outside the JobManager's lock: a webhook may take its time.
func (rs *restServer) visibleJobs(r *http.Request) []*job {
	jm := rs.jm
	jm.mu.Lock()
	all := make([]*job, 0, len(jm.jobs))
	for _, j := range jm.jobs {
		all = append(all, j)
	}
	jm.mu.Unlock()
	out := all[:0]
	for _, j := range all {
		if rs.mayView(r, j) {
			out = append(out, j)
		}
	}
	return out
}

func (rs *restServer) jobsOverview(w http.ResponseWriter, r *http.Request) {
	jobs := rs.visibleJobs(r)
	jm := rs.jm
	jm.mu.Lock()
	out := restapi.JobsOverview{Jobs: []restapi.JobSummary{}}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, summarize(j))
	}
	jm.mu.Unlock()
	sortSummaries(out.Jobs)
	writeJSON(w, http.StatusOK, out)
}

// jobsList is Flink's GET /jobs: ids and states only.
func (rs *restServer) jobsList(w http.ResponseWriter, r *http.Request) {
	jobs := rs.visibleJobs(r)
	jm := rs.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	out := restapi.JobIDsWithStatus{Jobs: []restapi.JobIDWithStatus{}}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, restapi.JobIDWithStatus{ID: j.id, Status: string(j.state)})
	}
	writeJSON(w, http.StatusOK, out)
}

// lockedJob takes the JobManager's lock and returns the job the path
// names; without one it answers 404, unlocks and returns nil. The caller
// unlocks after a job.
func (rs *restServer) lockedJob(w http.ResponseWriter, r *http.Request) *job {
	rs.jm.mu.Lock()
	j, ok := rs.jm.jobs[r.PathValue("id")]
	if !ok {
		rs.jm.mu.Unlock()
		writeError(w, http.StatusNotFound, "job %s not found", r.PathValue("id"))
		return nil
	}
	return j
}

func (rs *restServer) jobDetails(w http.ResponseWriter, r *http.Request) {
	jm := rs.jm
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	d := jobDetail(j, time.Now())
	d.PendingReason = jm.pendingReasonLocked(j, time.Now())
	if j.output != nil {
		// Lines printed so far (the end offset of GET /jobs/{id}/output): a follower asks
		// for output only when there is more.
		d.PrintedLines = j.output.end()
	}
	var coord *checkpoint.Coordinator
	if j.ckpt != nil {
		coord = j.ckpt.coord
	}
	jm.mu.Unlock()
	if coord != nil {
		// The counts of GET /jobs/{id}/checkpoints, read without jm.mu as
		// the coordinator answers on its own goroutine.
		c := coord.Stats().Counts
		d.Checkpoints = &restapi.CheckpointCounts{Restored: c.Restored, Total: c.Total, InProgress: c.InProgress, Completed: c.Completed, Failed: c.Failed}
	}
	writeJSON(w, http.StatusOK, d)
}

// jobDetail is GET /jobs/{id} of a job. Call with jm.mu held.
func jobDetail(j *job, now time.Time) restapi.JobDetails {
	ts := map[string]int64{}
	for s, t := range j.timestamps {
		ts[string(s)] = ms(t)
	}
	d := restapi.JobDetails{
		ID: j.id, Name: j.name, State: string(j.state), StartTime: ms(j.start), EndTime: ms(j.end),
		Duration: durationMS(j.start, j.end), Now: now.UnixMilli(), Timestamps: ts,
		Vertices: []restapi.JobVertex{}, MaxParallelism: j.plan.MaxParallelism, JobType: jobType(j.plan),
		IsStoppable: j.state == Running && j.ckpt != nil, StatusCounts: map[string]int{},
		Attempt: j.attempt, Restarts: j.restarts, Parallelism: j.parallelism,
		FailureCause: j.cause, Warnings: j.warnings, Owner: j.acl.Owner,
	}
	plan := jobPlan(j)
	d.Plan = &plan
	for _, v := range j.plan.Vertices {
		var m taskMetrics
		states := map[string]int{}
		var start, end time.Time
		for _, t := range j.sortedTasks() {
			if t.vertex != v.ID {
				continue
			}
			m.add(t.metrics)
			states[strings.ToLower(t.state)]++
			if !t.start.IsZero() && (start.IsZero() || t.start.Before(start)) {
				start = t.start
			}
			if t.end.After(end) {
				end = t.end
			}
		}
		status := vertexStatus(states, v.Parallelism)
		d.StatusCounts[status]++
		d.Vertices = append(d.Vertices, restapi.JobVertex{
			ID: vertexID(j.id, v.ID), Name: v.Name, Parallelism: v.Parallelism, MaxParallelism: j.plan.MaxParallelism,
			Operators: v.Operators, Status: status, SlotSharingGroupID: slotSharingGroupID(j.id), StartTime: ms(start), EndTime: ms(end),
			Duration: durationMS(start, end), Tasks: states, Metrics: m.io(j.state.Terminal()),
		})
	}
	if acl := j.acl; len(acl.ViewUsers)+len(acl.ViewGroups)+len(acl.ModifyUsers)+len(acl.ModifyGroups) > 0 {
		d.ACL = &restapi.ACL{ViewUsers: nonNil(acl.ViewUsers), ViewGroups: nonNil(acl.ViewGroups),
			ModifyUsers: nonNil(acl.ModifyUsers), ModifyGroups: nonNil(acl.ModifyGroups)}
	}
	return d
}

func vertexStatus(states map[string]int, n int) string {
	for _, s := range []string{"failed", "canceled", "running", "deploying"} {
		if states[s] > 0 {
			return strings.ToUpper(s)
		}
	}
	if states["finished"] == n {
		return "FINISHED"
	}
	return "CREATED"
}

func (rs *restServer) jobPatch(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("mode")
	if mode == "" {
		mode = "cancel"
	}
	if mode != "cancel" {
		writeError(w, http.StatusBadRequest, "mode %q is not supported: use mode=cancel", mode)
		return
	}
	err := rs.jm.Cancel(r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNoSuchJob):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, ErrJobTerminal):
		writeError(w, http.StatusConflict, "%v", err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, "%v", err)
	default:
		writeJSON(w, http.StatusAccepted, struct{}{})
	}
}

// submit accepts POST /jobs as multipart/form-data (part "spec": the YAML;
// "parameters": a JSON object; "parallelism"; "config"; "savepointPath";
// "allowNonRestoredState"; any number of "file" parts, named by their file
// names) or as a JSON object {"spec": "...", "parameters": {...},
// "parallelism": N, "config": {...}, "savepointPath": "...",
// "allowNonRestoredState": false}.
func (rs *restServer) submit(w http.ResponseWriter, r *http.Request) {
	limit := rs.jm.set.MaxUploadSize
	specLimit := rs.jm.set.MaxSpecSize
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var sub Submission
	var err error
	bodyKey := "rest.max-upload-size"
	switch ct {
	case "multipart/form-data":
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		sub, err = parseMultipartSubmission(r, limit, specLimit)
	case "application/json", "":
		// The spec travels inside the JSON: the body may be the spec and a little more.
		bodyKey = maxSpecSizeKey
		r.Body = http.MaxBytesReader(w, r.Body, specLimit+jsonSubmissionOverhead)
		sub, err = parseJSONSubmission(r.Body, specLimit)
	default:
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type %q: use multipart/form-data or application/json", ct)
		return
	}
	if err != nil {
		var mbe *http.MaxBytesError
		var tooLarge *specTooLargeError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, "%v", tooLarge)
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "request body exceeds %d bytes (%s): send a smaller job, or raise %s on the JobManager", mbe.Limit, bodyKey, bodyKey)
		default:
			writeError(w, http.StatusBadRequest, "%v", err)
		}
		return
	}
	u, _ := authn.UserFrom(r.Context())
	sub.ACL.Owner = u.Name
	// Parsed once, here: the tree of a spec costs memory and time in proportion to its nodes,
	// and Submit plans from this parse.
	spec, err := dataflow.ParseSpec(sub.Spec, sub.Params)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	sub.Parsed = spec
	// Data-level authorization: the submitter must be allowed every source
	// and sink, so nobody can make the cluster touch data for them that
	// they may not touch themselves.
	// No base directory: a relative data path is refused here, never
	// resolved against this process's working directory.
	files, err := spec.FileAccesses(attachedIn(sub.Files), "")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	data := dataAccesses(spec, files)
	if sub.SavepointPath != "" {
		// Restoring reads the savepoint's files: the submitter must be allowed to
		// read them, as for a file source. Decided before the JobManager looks
		// at the path, so a refusal tells nothing about what is there.
		dir, err := savepointDir(sub.SavepointPath)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
		data = append(data, authz.DataAccess{Verb: authz.VerbRead, Resource: "file:" + dir})
	}
	ok, reason, err := rs.authorizeData(r, data)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "authorization failed (request %s): %v", RequestID(r.Context()), err)
		return
	}
	if !ok {
		writeError(w, http.StatusForbidden, "%s", reason)
		return
	}
	if sub.SavepointPath != "" {
		dir, _ := savepointDir(sub.SavepointPath) // checked above
		if ok, reason, err := rs.mayRestoreCheckpoint(r, dir); err != nil {
			writeError(w, http.StatusInternalServerError, "authorization failed (request %s): %v", RequestID(r.Context()), err)
			return
		} else if !ok {
			writeError(w, http.StatusForbidden, "%s", reason)
			return
		}
	}
	res, err := rs.jm.SubmitJob(sub)
	if errors.Is(err, ErrBadSubmission) {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusAccepted, restapi.Submitted{ID: res.ID, Warnings: res.Warnings})
}

// maxSpecSizeKey bounds the job spec of a submission.
const maxSpecSizeKey = "rest.server.max-spec-size"

// jsonSubmissionOverhead is what a JSON submission may hold beside its spec: parameters,
// parallelism and access lists.
const jsonSubmissionOverhead = 64 << 10

// specTooLargeError is a job spec over rest.server.max-spec-size: a 413.
type specTooLargeError struct{ limit int64 }

func (e *specTooLargeError) Error() string {
	return fmt.Sprintf("job spec exceeds %d bytes (%s): a job spec describes operators; put data in attached files, or raise %s on the JobManager",
		e.limit, maxSpecSizeKey, maxSpecSizeKey)
}

func parseJSONSubmission(body io.Reader, specLimit int64) (Submission, error) {
	var req struct {
		Spec         string            `json:"spec"`
		Parameters   map[string]string `json:"parameters"`
		Parallelism  int               `json:"parallelism"`
		Config       map[string]string `json:"config"`
		ViewUsers    []string          `json:"view-users"`
		ViewGroups   []string          `json:"view-groups"`
		ModifyUsers  []string          `json:"modify-users"`
		ModifyGroups []string          `json:"modify-groups"`
		// Flink's names (JarRunRequestBody).
		SavepointPath         string `json:"savepointPath"`
		AllowNonRestoredState bool   `json:"allowNonRestoredState"`
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Submission{}, fmt.Errorf("job submission body: %w", err)
	}
	if req.Spec == "" {
		return Submission{}, fmt.Errorf("job submission body: field \"spec\" (the job's YAML) is required")
	}
	if int64(len(req.Spec)) > specLimit {
		return Submission{}, &specTooLargeError{specLimit}
	}
	if req.Parallelism < 0 {
		return Submission{}, fmt.Errorf("job submission body: parallelism %d: want a positive number", req.Parallelism)
	}
	return Submission{Spec: []byte(req.Spec), Params: req.Parameters, Parallelism: req.Parallelism, Config: req.Config, ACL: authz.JobACL{
		ViewUsers: req.ViewUsers, ViewGroups: req.ViewGroups, ModifyUsers: req.ModifyUsers, ModifyGroups: req.ModifyGroups,
	}, SavepointPath: req.SavepointPath, AllowNonRestoredState: req.AllowNonRestoredState}, nil
}

// parseMultipartSubmission reads a multipart submission: attached files may be as large as the
// body (rest.max-upload-size), every other part at most specLimit.
func parseMultipartSubmission(r *http.Request, limit, specLimit int64) (Submission, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return Submission{}, fmt.Errorf("job submission: %w", err)
	}
	sub := Submission{Files: map[string][]byte{}, Params: map[string]string{}}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Submission{}, fmt.Errorf("job submission: %w", err)
		}
		partLimit := specLimit
		if p.FormName() == "file" {
			partLimit = limit
		}
		data, err := io.ReadAll(io.LimitReader(p, partLimit+1))
		if err != nil {
			return Submission{}, fmt.Errorf("job submission part %q: %w", p.FormName(), err)
		}
		if int64(len(data)) > partLimit && p.FormName() != "file" {
			if p.FormName() == "spec" {
				return Submission{}, &specTooLargeError{specLimit}
			}
			return Submission{}, fmt.Errorf("job submission part %q exceeds %d bytes (%s)", p.FormName(), specLimit, maxSpecSizeKey)
		}
		switch p.FormName() {
		case "spec":
			sub.Spec = data
		case "parameters":
			if err := json.Unmarshal(data, &sub.Params); err != nil {
				return Submission{}, fmt.Errorf("job submission part \"parameters\": want a JSON object of strings: %w", err)
			}
		case "config":
			if err := json.Unmarshal(data, &sub.Config); err != nil {
				return Submission{}, fmt.Errorf("job submission part \"config\": want a JSON object of configuration keys and string values: %w", err)
			}
		case "parallelism":
			n, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil || n < 0 {
				return Submission{}, fmt.Errorf("job submission part \"parallelism\": %q is not a positive number", data)
			}
			sub.Parallelism = n
		case "savepointPath":
			sub.SavepointPath = strings.TrimSpace(string(data))
		case "allowNonRestoredState":
			b, err := strconv.ParseBool(strings.TrimSpace(string(data)))
			if err != nil {
				return Submission{}, fmt.Errorf("job submission part \"allowNonRestoredState\": %q: want true or false", data)
			}
			sub.AllowNonRestoredState = b
		case "view-users", "view-groups", "modify-users", "modify-groups":
			list := splitList(string(data))
			switch p.FormName() {
			case "view-users":
				sub.ACL.ViewUsers = list
			case "view-groups":
				sub.ACL.ViewGroups = list
			case "modify-users":
				sub.ACL.ModifyUsers = list
			default:
				sub.ACL.ModifyGroups = list
			}
		case "file":
			name := p.FileName()
			if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
				return Submission{}, fmt.Errorf("job submission: attached file name %q: want a plain file name", name)
			}
			sub.Files[name] = data
		default:
			return Submission{}, fmt.Errorf("job submission: unknown part %q (want spec, parameters, parallelism, config, savepointPath, allowNonRestoredState, file, view-users, view-groups, modify-users, modify-groups)", p.FormName())
		}
	}
	if len(sub.Spec) == 0 {
		return Submission{}, fmt.Errorf("job submission: part \"spec\" (the job's YAML) is required")
	}
	return sub, nil
}

// splitList splits a comma list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
