package config

// Process lifecycle: what a JobManager keeps of finished jobs, where it
// works, how it shuts down, and where a TaskManager serves its metrics.
// Kept in their own block so the lifecycle keys stay together.
func init() {
	for _, k := range []Key{
		// Flink's jobstore.* keys. expiration-time was a number of seconds
		// in Flink 1.x and a duration in Flink 2; both spellings are
		// accepted (see jobmanager.JobStoreExpiration), so it is a String.
		{Name: "jobstore.expiration-time", Type: String, Default: "3600",
			Doc: "How long a finished, canceled or failed job is kept (its record, REST views and blobs): seconds as a bare number (Flink), or a duration such as 1 h."},
		{Name: "jobstore.max-capacity", Type: Int, Default: "2147483647", Min: atLeastOne,
			Doc: "Most finished, canceled or failed jobs kept; the oldest is removed first (Flink's default: unbounded)."},

		// Flink's process working directories. A configured directory is
		// persistent: sluice keeps it on shutdown. Without one a temporary
		// directory is used and removed on shutdown.
		{Name: "process.working-dir", Type: String,
			Doc: "Persistent working directory of sluice processes (blob store, automatic CA); a temporary directory, removed on shutdown, when unset."},
		{Name: "process.jobmanager.working-dir", Type: String, Fallbacks: []string{"process.working-dir"},
			Doc: "Persistent working directory of the JobManager (blob store, automatic CA unless security.ssl.internal.auto.dir); kept on shutdown."},
		{Name: "process.taskmanager.working-dir", Type: String, Fallbacks: []string{"process.working-dir"},
			Doc: "Persistent working directory of a TaskManager (blob cache); kept on shutdown."},

		// Graceful shutdown of the JobManager (SIGTERM, SIGINT).
		{Name: "jobmanager.shutdown.cancel-jobs", Type: Bool, Default: "true",
			Doc: "On shutdown, cancel running jobs and wait for their tasks to stop (true), or leave them to the TaskManagers, which cancel them once the JobManager is lost (heartbeat.timeout)."},
		{Name: "jobmanager.shutdown.timeout", Type: Duration, Default: "20 s", Min: new(int64(0)),
			Doc: "Longest time a JobManager spends shutting down gracefully (cancelling jobs, finishing calls) before it stops regardless."},

		// TaskManager metrics endpoint.
		{Name: "taskmanager.metrics.bind-host", Type: String, Default: "127.0.0.1",
			Doc: "Local address the TaskManager's /metrics binds to. Off loopback it requires TLS (security.ssl.rest.*) and a client certificate or bearer token (security.rest.authentication.*)."},
	} {
		Register(k)
	}
}
