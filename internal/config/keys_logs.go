package config

// Where processes write their log files, with Flink's key names: the REST
// API lists and serves them (GET /jobmanager/logs, /taskmanagers/{id}/logs)
// to callers allowed `view` on `logs`.
func init() {
	for _, k := range []Key{
		{Name: "env.log.dir", Type: String,
			Doc: "Directory each JobManager and TaskManager writes its log file to (sluice-jobmanager.log, sluice-taskmanager-<id>.log), besides stderr; created 0700 if missing, files 0600. Empty: no log file, and the REST API lists no log files."},
		{Name: "env.log.max", Type: Int, Default: "10", Min: new(int64(0)),
			Doc: "Log files of earlier runs kept per process (name.1 is the newest); older ones are deleted at start."},
	} {
		Register(k)
	}
}
