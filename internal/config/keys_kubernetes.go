package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Native Kubernetes deployment (sluice kubernetes-session, internal/kubernetes): Flink's keys.
func init() {
	positive := func(v any) error {
		if v.(float64) <= 0 {
			return errors.New("must be a positive number of CPUs")
		}
		return nil
	}
	for _, k := range []Key{
		{Name: "kubernetes.cluster-id", Type: String, Check: checkClusterID,
			Doc: "Name of the session: the JobManager Deployment and every object the client creates are named after it. Lower-case letters, digits and '-', at most 45 characters; generated when unset."},
		{Name: "kubernetes.namespace", Type: String, Default: "default",
			Doc: "Namespace the session's objects are created in."},
		{Name: "kubernetes.config.file", Type: String, Aliases: []string{"kubernetes.config-file"},
			Doc: "kubeconfig file of the client; when unset, the in-cluster configuration when running in a pod, else $KUBECONFIG, else ~/.kube/config."},
		{Name: "kubernetes.context", Type: String,
			Doc: "Context of the kubeconfig to use; its current context when unset."},
		{Name: "kubernetes.container.image", Type: String, Aliases: []string{"kubernetes.container.image.ref"}, Default: "sluice:latest",
			Doc: "Image of the JobManager and TaskManager containers; it must hold the sluice binary on the PATH."},
		{Name: "kubernetes.service-account", Type: String, Default: "default",
			Doc: "ServiceAccount the JobManager pods run as (and TaskManager pods, unless kubernetes.taskmanager.service-account is set); it needs the role printed by sluice kubernetes-session rbac."},
		{Name: "kubernetes.rest-service.exposed.type", Type: String, Default: "ClusterIP",
			Enum: []string{"ClusterIP", "NodePort", "LoadBalancer", "Headless_ClusterIP"},
			Doc:  "Type of the Service that exposes the JobManager's REST API."},
		{Name: "kubernetes.jobmanager.cpu", Type: Float, Default: "1.0", Check: positive,
			Doc: "CPUs requested (and limited) for the JobManager container."},
		{Name: "kubernetes.jobmanager.memory", Type: Bytes, Default: "1 gb", Min: new(int64(64 << 20)),
			Doc: "Memory requested (and limited) for the JobManager container."},
		{Name: "kubernetes.taskmanager.cpu", Type: Float, Default: "1.0", Check: positive,
			Doc: "CPUs requested (and limited) for each TaskManager container."},
		{Name: "kubernetes.taskmanager.memory", Type: Bytes, Default: "1728mb", Min: new(int64(64 << 20)), Aliases: []string{"taskmanager.memory.process.size"},
			Doc: "Memory requested (and limited) for each TaskManager container."},
		{Name: "kubernetes.secrets", Type: List, Check: checkKubernetesSecrets,
			Doc: "Existing Secrets mounted read-only into the JobManager and TaskManager containers: name:/mount/path, comma-separated (foo:/opt/secrets-foo,bar:/opt/secrets-bar)."},
		{Name: "kubernetes.env.secretKeyRef", Type: String, Check: func(v any) error { _, err := ParseSecretKeyRefs(v.(string)); return err },
			Doc: "Environment variables of the JobManager and TaskManager containers taken from existing Secrets: env:NAME,secret:SECRET,key:KEY, items separated by ';'."},
		{Name: "kubernetes.container.run-as-user", Type: Int, Default: "9999", Min: new(int64(0)),
			Doc: "User id the JobManager and TaskManager containers run as (runAsNonRoot), also their group and the pods' fsGroup, so they can read their Secret files (root-owned, group fsGroup, 0440 on a read-only mount, which sluice accepts for keys); 0 runs them as root with no security context."},
		{Name: "kubernetes.jobmanager.replicas", Type: Int, Default: "1", Min: new(int64(1)),
			Doc: "JobManager pods of the Deployment; more than 1 needs high availability (one leader, the others standby)."},
	} {
		Register(k)
	}
}

var clusterIDRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// checkClusterID accepts names every object of a session can carry: a DNS
// label (Services) short enough for the suffixes the client appends.
func checkClusterID(v any) error {
	s := v.(string)
	if len(s) > 45 || !clusterIDRE.MatchString(s) {
		return fmt.Errorf("%q is not a valid cluster id: want lower-case letters, digits and '-', starting with a letter, at most 45 characters", s)
	}
	return nil
}

func checkKubernetesSecrets(v any) error {
	for _, item := range v.([]string) {
		name, path, ok := strings.Cut(item, ":")
		if !ok || name == "" || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: want secret-name:/absolute/mount/path", item)
		}
	}
	return nil
}

// SecretKeyRef is one item of kubernetes.env.secretKeyRef.
type SecretKeyRef struct {
	Env, Secret, Key string
}

// ParseSecretKeyRefs parses kubernetes.env.secretKeyRef:
// "env:NAME,secret:SECRET,key:KEY;env:...".
func ParseSecretKeyRefs(s string) ([]SecretKeyRef, error) {
	var out []SecretKeyRef
	for _, item := range strings.Split(s, ";") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		var r SecretKeyRef
		for _, part := range strings.Split(item, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok || v == "" {
				return nil, fmt.Errorf("%q: want env:NAME,secret:SECRET,key:KEY", item)
			}
			switch k {
			case "env":
				r.Env = v
			case "secret":
				r.Secret = v
			case "key":
				r.Key = v
			default:
				return nil, fmt.Errorf("%q: unknown field %q: want env:NAME,secret:SECRET,key:KEY", item, k)
			}
		}
		if r.Env == "" || r.Secret == "" || r.Key == "" {
			return nil, fmt.Errorf("%q: want env:NAME,secret:SECRET,key:KEY (all three)", item)
		}
		out = append(out, r)
	}
	return out, nil
}
