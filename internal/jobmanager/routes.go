package jobmanager

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one REST endpoint and what a caller needs to use it: exactly
// one verb on one resource. Handlers that decide per item (the job list
// shows only the jobs the caller may view; a submission is checked against
// the data it reads and writes) authorize those items themselves, on top.
type route struct {
	pattern  string
	verb     string
	resource string // "job/{id}" is filled in from the path
	handler  http.HandlerFunc
	doc      string
	// filtered routes list items: without the verb the caller gets only
	// the items it may view one by one, instead of a 403.
	filtered bool
}

// routes is the REST API. docs/security.md shows the same table; a test
// checks that they agree and that every endpoint has a verb and resource.
func (rs *restServer) routes() []route {
	return []route{
		{"GET /overview", "view", "cluster", rs.overview, "cluster overview", false},
		{"GET /config", "view", "cluster", rs.dashboardConfig, "dashboard settings", false},
		{"GET /jobs/overview", "list", "jobs", rs.jobsOverview, "every job with list on jobs, else the jobs the caller may view", true},
		{"GET /jobs", "list", "jobs", rs.jobsList, "ids and states, filtered as /jobs/overview", true},
		{"POST /jobs", "submit", "jobs", rs.submit, "submit a job; also read/write on every source and sink", false},
		{"GET /jobs/{id}", "view", "job/{id}", rs.jobDetails, "one job", false},
		{"GET /jobs/{id}/exceptions", "view", "job/{id}", rs.jobExceptions, "the job's root cause and failure history (Flink's fields)", false},
		{"GET /jobs/{id}/plan", "view", "job/{id}", rs.jobPlan, "the dataflow graph: vertices, parallelism, edges with their partitioning", false},
		{"GET /jobs/{id}/config", "view", "job/{id}", rs.jobConfig, "the job's execution config and parameters, sensitive values masked", false},
		{"GET /jobs/{id}/execution-result", "view", "job/{id}", rs.jobExecutionResult, "IN_PROGRESS, or COMPLETED with the job's result", false},
		{"GET /jobs/{id}/metrics", "view", "job/{id}", rs.jobMetrics, "job metrics (?get=a,b)", false},
		{"GET /jobs/{id}/vertices/{vid}", "view", "job/{id}", rs.vertexDetails, "one vertex with its subtasks", false},
		{"GET /jobs/{id}/vertices/{vid}/metrics", "view", "job/{id}", rs.vertexMetrics, "the vertex's subtask metrics (?get=0.numRecordsIn,...)", false},
		{"GET /jobs/{id}/vertices/{vid}/subtasks/metrics", "view", "job/{id}", rs.subtasksMetrics, "metrics aggregated over subtasks (?get=, ?agg=, ?subtasks=)", false},
		{"GET /jobs/{id}/vertices/{vid}/backpressure", "view", "job/{id}", rs.vertexBackPressure, "back-pressure per subtask, measured on the data plane", false},
		{"GET /jobs/{id}/output", "view", "job/{id}", rs.jobOutput, "what the job's print sinks printed (?offset=N), the last jobmanager.job-output.max-lines lines", false},
		{"PATCH /jobs/{id}", "cancel", "job/{id}", rs.jobPatch, "cancel a job (?mode=cancel)", false},
		{"GET /jobs/{id}/checkpoints", "view", "job/{id}", rs.checkpointStats, "checkpoint statistics (Flink's fields)", false},
		{"GET /jobs/{id}/checkpoints/config", "view", "job/{id}", rs.checkpointConfig, "the job's checkpoint configuration", false},
		{"POST /jobs/{id}/savepoints", "savepoint", "job/{id}", rs.triggerSavepoint, "take a savepoint (target-directory, cancel-job); also write on file:<target-directory>", false},
		{"GET /jobs/{id}/savepoints/{triggerid}", "view", "job/{id}", rs.savepointStatus, "a savepoint's status and location", false},
		{"POST /jobs/{id}/stop", "savepoint", "job/{id}", rs.stopWithSavepoint, "stop with a savepoint (targetDirectory, drain); also write on file:<targetDirectory>", false},
		{"GET /taskmanagers", "view", "taskmanagers", rs.taskmanagers, "TaskManagers", false},
		{"GET /taskmanagers/{id}", "view", "taskmanagers", rs.taskmanagerDetails, "one TaskManager: hardware, memory, slots", false},
		{"GET /taskmanagers/{id}/metrics", "view", "metrics", rs.taskmanagerMetrics, "a TaskManager's process metrics (?get=a,b)", false},
		{"GET /taskmanagers/{id}/logs", "view", "logs", rs.tmLogs, "a TaskManager's log files (env.log.dir), asked of the TaskManager", false},
		{"GET /taskmanagers/{id}/logs/{filename}", "view", "logs", rs.tmLogFile, "the end of one of them, as text", false},
		{"GET /jobmanager/config", "view", "config", rs.jmConfig, "configuration, sensitive values masked", false},
		{"GET /jobmanager/environment", "view", "config", rs.jmEnvironment, "the JobManager's runtime, command line (secrets masked) and modules", false},
		{"GET /jobmanager/metrics", "view", "metrics", rs.jmMetricsREST, "the JobManager's process and cluster metrics (?get=a,b)", false},
		{"GET /jobmanager/log", "view", "logs", rs.jmLog, "recent JobManager log lines", false},
		{"GET /jobmanager/logs", "view", "logs", rs.jmLogs, "the JobManager's log files (env.log.dir)", false},
		{"GET /jobmanager/logs/{filename}", "view", "logs", rs.jmLogFile, "the end of one of them, as text", false},
		{"GET /metrics", "view", "metrics", promhttp.HandlerFor(rs.jm.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP, "Prometheus metrics", false},
		{"POST /admin/reload", "admin", "admin", rs.adminReload, "reload the authorization policy and the token file now", false},
		{"POST /admin/join-tokens", "admin", "cluster", rs.adminNewJoinToken, "create a join token (automatic mode) and retire the others unless keep-old", false},
		{"GET /admin/join-tokens", "admin", "cluster", rs.adminJoinTokens, "join tokens and the TaskManager ids each issued a certificate to, no secrets", false},
		{"POST /admin/taskmanagers/{id}/revoke", "admin", "cluster", rs.adminRevokeTaskManager, "revoke a TaskManager's certificates and drop its registration", false},
		{"GET /whoami", "view", "self", rs.whoami, "who the server takes the caller for (every authenticated caller)", false},
		{"POST /auth/can-i", "view", "self", rs.canI, "may the caller do VERB on RESOURCE (every authenticated caller)", false},
		{"GET /auth/info", "view", "self", rs.authInfo, "how this listener lets a browser in, and who the caller is if anyone (answers without a credential too)", false},
		{"POST /auth/login", "view", "self", rs.login, "exchange the request's bearer token for a dashboard session cookie (TLS listeners with token authentication)", false},
		{"POST /auth/logout", "view", "self", rs.logout, "end the caller's dashboard session", false},
	}
}
