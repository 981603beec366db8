package jobmanager

import (
	"context"
	"errors"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/processlog"
	"github.com/sluice-dev/sluice/internal/restapi"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// Log files of the JobManager and the TaskManagers (env.log.dir), for
// callers allowed `view` on `logs`. A TaskManager's files come from the
// TaskManager itself over the control plane (mutual TLS, and a service ACL
// that lets only the JobManager ask), never from a path the JobManager
// would guess: the TaskManager may be on another machine.

// logRPCTimeout bounds a TaskManager's answer about its logs.
const logRPCTimeout = 10 * time.Second

// writeLogText answers a log file as text. Truncated says the file is
// longer than what is sent (its end, processlog.MaxRead bytes).
func writeLogText(w http.ResponseWriter, data []byte, truncated bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if truncated {
		w.Header().Set("X-Log-Truncated", "true")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// jmLogs is GET /jobmanager/logs.
func (rs *restServer) jmLogs(w http.ResponseWriter, r *http.Request) {
	logs, err := rs.jm.logFiles.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, restapi.LogList{Logs: logs})
}

// jmLogFile is GET /jobmanager/logs/{filename}.
func (rs *restServer) jmLogFile(w http.ResponseWriter, r *http.Request) {
	data, truncated, err := rs.jm.logFiles.Read(r.PathValue("filename"), 0)
	if errors.Is(err, processlog.ErrNoSuchLog) {
		writeError(w, http.StatusNotFound, "%v: GET /jobmanager/logs lists the JobManager's log files", err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeLogText(w, data, truncated)
}

// tmClient returns the control-plane client of the TaskManager the path
// names, or answers 404.
func (rs *restServer) tmClient(w http.ResponseWriter, r *http.Request) controlpb.TaskManagerClient {
	tm := rs.lockedTM(w, r)
	if tm == nil {
		return nil
	}
	c := tm.client
	rs.jm.mu.Unlock()
	return c
}

// writeTMError answers the error of a TaskManager's log RPC.
func writeTMError(w http.ResponseWriter, r *http.Request, err error) {
	switch status.Code(err) {
	case codes.NotFound:
		writeError(w, http.StatusNotFound, "taskmanager %s: %s: GET /taskmanagers/%s/logs lists its log files", r.PathValue("id"), status.Convert(err).Message(), r.PathValue("id"))
	case codes.Unimplemented:
		writeError(w, http.StatusNotImplemented, "taskmanager %s runs a sluice version that does not serve its logs: upgrade it", r.PathValue("id"))
	default:
		writeError(w, http.StatusBadGateway, "taskmanager %s did not answer about its logs: %s", r.PathValue("id"), status.Convert(err).Message())
	}
}

// tmLogs is GET /taskmanagers/{id}/logs.
func (rs *restServer) tmLogs(w http.ResponseWriter, r *http.Request) {
	c := rs.tmClient(w, r)
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), logRPCTimeout)
	defer cancel()
	res, err := c.ListLogs(ctx, &controlpb.ListLogsRequest{})
	if err != nil {
		writeTMError(w, r, err)
		return
	}
	out := restapi.LogList{Logs: []restapi.LogInfo{}}
	for _, l := range res.Logs {
		out.Logs = append(out.Logs, restapi.LogInfo{Name: l.Name, Size: l.Size, MTime: l.MtimeMs})
	}
	writeJSON(w, http.StatusOK, out)
}

// tmLogFile is GET /taskmanagers/{id}/logs/{filename}.
func (rs *restServer) tmLogFile(w http.ResponseWriter, r *http.Request) {
	c := rs.tmClient(w, r)
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), logRPCTimeout)
	defer cancel()
	res, err := c.ReadLog(ctx, &controlpb.ReadLogRequest{Name: r.PathValue("filename"), MaxBytes: processlog.MaxRead})
	if err != nil {
		writeTMError(w, r, err)
		return
	}
	writeLogText(w, res.Data, res.Truncated)
}
