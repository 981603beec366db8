package config

// The JobManager's high-availability services and its Kubernetes resource
// manager (TaskManager pods on demand), with Flink's key names and, where
// client-go needs other values, sluice's defaults.
func init() {
	for _, k := range []Key{
		{Name: "execution.target", Type: String,
			Doc: "Where the cluster runs: remote (standalone), local, or kubernetes-session / kubernetes-application (set by the client; the JobManager then creates TaskManager pods)."},
		// High availability (Flink's high-availability.* keys).
		{Name: "high-availability.type", Type: String, Default: "NONE", Aliases: []string{"high-availability"},
			Doc: "High-availability mode of the JobManager: NONE, or kubernetes (leader election through a Lease, metadata in ConfigMaps)."},
		{Name: "high-availability.storageDir", Type: String, Aliases: []string{"high-availability.storage.path"},
			Doc: "Directory every JobManager replica can read and write (a shared volume) holding the submitted jobs' specs and files; required with high-availability.type: kubernetes."},
		{Name: "high-availability.cluster-id", Type: String, Aliases: []string{"high-availability.cluster.id"},
			Doc: "Name of the cluster's high-availability metadata (the Lease and ConfigMaps are named after it); kubernetes.cluster-id when unset."},
		{Name: "high-availability.kubernetes.leader-election.lease-duration", Type: Duration, Default: "15 s", Min: new(int64(1000)),
			Doc: "How long a leader's Lease is valid without renewal: a standby takes over at most this long after the leader stopped renewing."},
		{Name: "high-availability.kubernetes.leader-election.renew-deadline", Type: Duration, Default: "10 s", Min: new(int64(500)),
			Doc: "How long the leader keeps retrying to renew its Lease before it gives leadership up; must be below the lease duration (Flink's default equals it; client-go refuses that)."},
		{Name: "high-availability.kubernetes.leader-election.retry-period", Type: Duration, Default: "2 s", Min: new(int64(100)),
			Doc: "Time between tries to acquire or renew the Lease."},

		// The JobManager's resource manager.
		{Name: "resourcemanager.taskmanager-timeout", Type: Duration, Default: "30 s", Min: new(int64(0)),
			Doc: "How long a TaskManager the resource manager started may stay idle (no slot in use) before its pod is deleted."},
		{Name: "resourcemanager.taskmanager-startup-timeout", Type: Duration, Default: "5 min", Min: new(int64(1000)),
			Doc: "How long a TaskManager pod may take to register before the resource manager deletes it and reports why it did not start."},

		{Name: "kubernetes.container.image.pull-policy", Type: String, Default: "IfNotPresent", Enum: []string{"IfNotPresent", "Always", "Never"},
			Doc: "Image pull policy of the containers."},
		{Name: "kubernetes.taskmanager.service-account", Type: String, Fallbacks: []string{"kubernetes.service-account"},
			Doc: "Service account of the TaskManager pods."},
	} {
		Register(k)
	}
}

func init() {
	Register(Key{Name: "execution.shutdown-on-application-finish", Type: Bool, Default: "true",
		Doc: "An application cluster (sluice run --target kubernetes-application) deletes its JobManager Deployment, and with it every object it owns, once its job has ended."})
}
