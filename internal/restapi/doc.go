// Package restapi holds the request and response bodies of the JobManager's
// REST API, shared by the server (internal/jobmanager) and the client
// (internal/client), so that both sides agree on every field by
// construction.
//
// Where Flink's REST API has the same endpoint, the JSON field names are
// Flink's (its REST API reference and rest_v1_dispatcher.yml), so Flink's
// own tools and dashboards read sluice's answers. Fields sluice adds beside
// Flink's are marked as sluice's own.
package restapi
