package jobmanager

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/restapi"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

// Checkpoint and savepoint endpoints, with Flink's paths and field names
// (docs/architecture.md, "Engine", §8.1 and §9).

// jobCheckpoints returns a job's coordinator, or answers 404.
func (rs *restServer) jobCheckpoints(w http.ResponseWriter, id string) (*job, *jobCheckpointing, bool) {
	jm := rs.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, ok := jm.jobs[id]
	if !ok || j.ckpt == nil {
		writeError(w, http.StatusNotFound, "job %s: %v", id, ErrNoSuchJob)
		return nil, nil, false
	}
	return j, j.ckpt, true
}

// checkpointStats is GET /jobs/{id}/checkpoints.
func (rs *restServer) checkpointStats(w http.ResponseWriter, r *http.Request) {
	_, jc, ok := rs.jobCheckpoints(w, r.PathValue("id"))
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, jc.coord.Stats())
}

// checkpointConfig is GET /jobs/{id}/checkpoints/config.
func (rs *restServer) checkpointConfig(w http.ResponseWriter, r *http.Request) {
	j, _, ok := rs.jobCheckpoints(w, r.PathValue("id"))
	if !ok {
		return
	}
	set := j.checkpoints
	storage := ""
	if set.Dir != "" {
		storage = "file://" + set.Dir
	}
	sealing := checkpoint.SealingSHA256
	if rs.jm.set.CheckpointKey != nil {
		sealing = checkpoint.SealingAESGCM
	}
	interval := set.Interval.Milliseconds()
	if !set.Enabled() {
		interval = 0x7fffffffffffffff // Flink's "disabled": Long.MAX_VALUE
	}
	writeJSON(w, http.StatusOK, restapi.CheckpointConfig{
		Mode:     strings.ToLower(set.Mode),
		Interval: interval, Timeout: set.Timeout.Milliseconds(), MinPause: set.MinPause.Milliseconds(),
		MaxConcurrent: 1,
		Externalization: restapi.Externalization{
			Enabled: set.Dir != "", DeleteOnCancellation: set.Retention != RetainOnCancellation,
		},
		StateBackend: set.Backend, CheckpointStorage: storage, UnalignedCheckpoints: false,
		TolerableFailedCheckpoints: set.TolerableFailures, CheckpointsAfterTasksFinish: true,
		Incremental: set.Incremental, Sealing: sealing,
	})
}

// savepointBody is POST /jobs/{id}/savepoints and POST /jobs/{id}/stop:
// Flink spells the directory target-directory for the first and
// targetDirectory for the second; both are accepted on both.
type savepointBody struct {
	TargetDirectory  string `json:"target-directory"`
	TargetDirectory2 string `json:"targetDirectory"`
	CancelJob        bool   `json:"cancel-job"`
	Drain            bool   `json:"drain"`
	// Flink sends these; sluice writes canonical savepoints only.
	FormatType  string `json:"formatType"`
	FormatType2 string `json:"format-type"`
}

// triggerSavepoint is POST /jobs/{id}/savepoints.
func (rs *restServer) triggerSavepoint(w http.ResponseWriter, r *http.Request) {
	rs.savepoint(w, r, false)
}

// stopWithSavepoint is POST /jobs/{id}/stop.
func (rs *restServer) stopWithSavepoint(w http.ResponseWriter, r *http.Request) {
	rs.savepoint(w, r, true)
}

func (rs *restServer) savepoint(w http.ResponseWriter, r *http.Request, stop bool) {
	var body savepointBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "savepoint request: %v (want {\"target-directory\": \"/dir\", \"cancel-job\": false} or, for stop, {\"targetDirectory\": \"/dir\", \"drain\": false})", err)
		return
	}
	if f := body.FormatType + body.FormatType2; f != "" && !strings.EqualFold(f, "CANONICAL") {
		writeError(w, http.StatusBadRequest, "savepoint format %q: sluice writes CANONICAL savepoints only", f)
		return
	}
	target := body.TargetDirectory
	if target == "" {
		target = body.TargetDirectory2
	}
	j, jc, ok := rs.jobCheckpoints(w, r.PathValue("id"))
	if !ok {
		return
	}
	if target == "" {
		target = j.checkpoints.SavepointsDir
		if target == "" {
			writeError(w, http.StatusBadRequest, "no savepoint directory: give target-directory (sluice savepoint ID DIR, sluice stop ID --savepointPath DIR) or set state.savepoints.dir in the cluster's configuration")
			return
		}
	} else {
		dir, err := checkpoint.LocalPath(target)
		if err != nil {
			writeError(w, http.StatusBadRequest, "target-directory: %v", err)
			return
		}
		target = dir
		// The cluster writes the savepoint where the caller says: the caller
		// must be allowed to write there, as for a sink.
		allowed, reason, err := rs.authorizeData(r, []authz.DataAccess{{Verb: authz.VerbWrite, Resource: "file:" + target}})
		if err != nil {
			writeError(w, http.StatusInternalServerError, "authorization failed (request %s): %v", RequestID(r.Context()), err)
			return
		}
		if !allowed {
			writeError(w, http.StatusForbidden, "%s", reason)
			return
		}
		if err := rs.jm.checkSavepointTarget(target, j); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	rs.jm.mu.Lock()
	state := j.state
	rs.jm.mu.Unlock()
	if state != Running {
		writeError(w, http.StatusConflict, "job %s is %s: savepoints are taken of RUNNING jobs", j.id, state)
		return
	}
	req := checkpoint.SavepointRequest{Target: target, Type: event.Savepoint}
	switch {
	case stop && body.Drain:
		req.Type = event.SavepointTerminate
	case stop, body.CancelJob:
		req.Type, req.Cancel = event.SavepointSuspend, !stop && body.CancelJob
	}
	id, err := jc.coord.TriggerSavepoint(req)
	if errors.Is(err, checkpoint.ErrTooManySavepoints) {
		writeError(w, http.StatusTooManyRequests, "job %s: %v", j.id, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, "%v", err)
		return
	}
	rs.jm.log.Info("savepoint requested", "job", j.id, "request-id", id, "target", target, "type", req.Type.String(), "cancel", req.Cancel)
	writeJSON(w, http.StatusAccepted, restapi.SavepointTriggered{RequestID: id})
}

// savepointStatus is GET /jobs/{id}/savepoints/{triggerid}.
func (rs *restServer) savepointStatus(w http.ResponseWriter, r *http.Request) {
	_, jc, ok := rs.jobCheckpoints(w, r.PathValue("id"))
	if !ok {
		return
	}
	op, ok := jc.coord.Operation(r.PathValue("triggerid"))
	if !ok {
		writeError(w, http.StatusNotFound, "no savepoint request %q for job %s", r.PathValue("triggerid"), r.PathValue("id"))
		return
	}
	if !op.Done {
		writeJSON(w, http.StatusOK, restapi.SavepointStatus{Status: restapi.QueueStatus{ID: restapi.InProgress}})
		return
	}
	operation := &restapi.SavepointOperation{Location: op.Location}
	if op.Failure != "" {
		operation = &restapi.SavepointOperation{FailureCause: &restapi.FailureCause{Class: "sluice.SavepointFailure", Message: op.Failure}}
	}
	writeJSON(w, http.StatusOK, restapi.SavepointStatus{Status: restapi.QueueStatus{ID: restapi.Completed}, Operation: operation})
}
