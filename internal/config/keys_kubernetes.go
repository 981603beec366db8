package config

// Native Kubernetes: how sluice reaches the API server and what the
// cluster's pods look like, with Flink's key names.
func init() {
	for _, k := range []Key{
		// Kubernetes access and the TaskManager pods (Flink's kubernetes.* keys).
		{Name: "kubernetes.cluster-id", Type: String,
			Doc: "Name of the Kubernetes cluster deployment; names its Deployment, Services, ConfigMaps, Secrets and pods."},
		{Name: "kubernetes.namespace", Type: String, Default: "default",
			Doc: "Namespace every object of the cluster is created in."},
		{Name: "kubernetes.config.file", Type: String, Aliases: []string{"kubernetes.config-file"},
			Doc: "kubeconfig file; the in-cluster service account when unset and running in a pod, else ~/.kube/config."},
		{Name: "kubernetes.context", Type: String,
			Doc: "Context of the kubeconfig to use; its current context when unset."},
		{Name: "kubernetes.container.image", Type: String, Aliases: []string{"kubernetes.container.image.ref"}, Default: "sluice:latest",
			Doc: "Image of the JobManager and TaskManager containers."},
		{Name: "kubernetes.service-account", Type: String, Default: "default",
			Doc: "Service account of the JobManager and TaskManager pods."},
		{Name: "kubernetes.taskmanager.cpu", Type: Float, Default: "1.0", Check: checkAtLeast(0.001),
			Doc: "CPU a TaskManager pod requests and is limited to."},
		{Name: "kubernetes.taskmanager.memory", Type: Bytes, Default: "1728mb", Aliases: []string{"taskmanager.memory.process.size"},
			Doc: "Memory a TaskManager pod requests and is limited to."},
		{Name: "kubernetes.secrets", Type: List,
			Doc: "Secrets mounted into the JobManager and TaskManager pods, as name:/mount/path entries."},
		{Name: "kubernetes.env.secretKeyRef", Type: String,
			Doc: "Environment variables set from Secrets in the pods: env:NAME,secret:SECRET,key:KEY entries separated by ';'."},
	} {
		Register(k)
	}
}
