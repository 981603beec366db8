// Package session builds and manages a sluice session cluster on
// Kubernetes (sluice kubernetes-session start|stop|list|rbac): the
// JobManager Deployment, its Services, a ConfigMap with the effective
// configuration, and a Secret for every piece of secret material the
// client's configuration points at, each owned by the Deployment.
package session

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/config"
)

// Labels every object of a session carries (Flink's, with sluice's type).
const (
	LabelApp       = "app"
	LabelType      = "type"
	LabelComponent = "component"
	// TypeValue marks objects made by sluice's native Kubernetes mode.
	TypeValue = "sluice-native-kubernetes"
)

// Names of what the client creates, derived from the cluster id.
func RESTServiceName(clusterID string) string  { return clusterID + "-rest" }
func RPCServiceName(clusterID string) string   { return clusterID }
func ConfigMapName(clusterID string) string    { return clusterID + "-config" }
func ConfigSecretName(clusterID string) string { return clusterID + "-config-secrets" }
func TaskManagerConfigSecretName(clusterID string) string {
	return clusterID + "-taskmanager-config-secrets"
}

// TaskManagerPodTemplateFile is the ConfigMap key of the TaskManager pod
// template: the image, command, resources, volumes (ConfigMap, the
// TaskManagers' config Secret and the shipped files TaskManagers need) and
// env the JobManager's resource manager gives every TaskManager pod.
const TaskManagerPodTemplateFile = "taskmanager-pod-template.yaml"

// Ports the session's Services expose, the JobManager's defaults.
const (
	defaultBlobPort = 6124
)

// Objects is everything kubernetes-session start creates.
type Objects struct {
	ClusterID string
	Namespace string
	// Deployment runs the JobManager; it owns everything else.
	Deployment  *appsv1.Deployment
	RESTService *corev1.Service
	RPCService  *corev1.Service
	ConfigMap   *corev1.ConfigMap
	// Secrets: the config layers and one per shipped file.
	Secrets []*corev1.Secret
	// TaskManagerPod is the template stored in the ConfigMap.
	TaskManagerPod *corev1.Pod
	// Files lists what was shipped where, for the user.
	Files []ShippedFile
}

// ShippedFile reports one file the client shipped.
type ShippedFile struct {
	Key, ClientPath, Secret, MountPath string
	TaskManagers                       bool
}

// Labels returns the labels of a session's objects of one component
// ("" for objects shared by all).
func Labels(clusterID, component string) map[string]string {
	l := map[string]string{LabelApp: clusterID, LabelType: TypeValue}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// SelectorFor is the label selector of every object of a session.
func SelectorFor(clusterID string) string {
	return LabelApp + "=" + clusterID + "," + LabelType + "=" + TypeValue
}

// ClusterID returns kubernetes.cluster-id, or a new random one.
func ClusterID(cfg *config.Config) string {
	if id := cfg.String("kubernetes.cluster-id"); id != "" {
		return id
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "sluice-" + hex.EncodeToString(b)
}

// Build makes the session's objects from the client's configuration; it
// reads the files the configuration points at. Nothing is sent anywhere.
func Build(cfg *config.Config) (*Objects, error) {
	id := ClusterID(cfg)
	ns := cfg.String("kubernetes.namespace")
	files, err := readShippedFiles(cfg, id)
	if err != nil {
		return nil, err
	}
	delegationTokens := cfg.Bool("security.delegation.tokens.enabled")
	userSecrets, err := userSecretMounts(cfg)
	if err != nil {
		return nil, err
	}
	env, err := secretEnv(cfg)
	if err != nil {
		return nil, err
	}

	eff, err := effectiveConfig(cfg, files, id, ns)
	if err != nil {
		return nil, err
	}
	ports := map[string]int{
		"rest": eff.Int("rest.port"),
		"rpc":  eff.Int("jobmanager.rpc.port"),
		"blob": eff.Int("blob.server.port"),
	}
	for name, key := range map[string]string{"rest": "rest.port", "rpc": "jobmanager.rpc.port", "blob": "blob.server.port"} {
		if ports[name] == 0 {
			return nil, fmt.Errorf("%s is 0: a session on Kubernetes needs fixed ports for its Services; set %s", key, key)
		}
	}
	public, jmSecrets, _, err := splitSecrets(eff)
	if err != nil {
		return nil, err
	}
	// The TaskManagers' configuration names only files their pods mount:
	// without the JobManager's files, and, with delegation tokens on,
	// without a Kerberos login of their own (they get tokens instead).
	tmEff := eff.Clone()
	for _, f := range files {
		if !f.inTaskManagers(delegationTokens) {
			tmEff.Unset(f.Key)
		}
	}
	if delegationTokens {
		for _, k := range []string{"security.kerberos.login.keytab", "security.kerberos.login.principal", "security.kerberos.login.contexts"} {
			tmEff.Unset(k)
		}
	}
	tmPublic, _, tmSecrets, err := splitSecrets(tmEff)
	if err != nil {
		return nil, err
	}

	o := &Objects{ClusterID: id, Namespace: ns}
	meta := func(name, component string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: Labels(id, component)}
	}

	// Secrets: the config layers, then one per file.
	o.Secrets = append(o.Secrets,
		&corev1.Secret{ObjectMeta: meta(ConfigSecretName(id), "jobmanager"), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{SecretsFile: jmSecrets}},
		&corev1.Secret{ObjectMeta: meta(TaskManagerConfigSecretName(id), "taskmanager"), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{SecretsFile: tmSecrets}},
	)
	for _, f := range files {
		component := "jobmanager"
		if f.inTaskManagers(delegationTokens) {
			component = ""
		}
		o.Secrets = append(o.Secrets, &corev1.Secret{ObjectMeta: meta(f.SecretName, component), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{f.FileName: f.Data}})
		o.Files = append(o.Files, ShippedFile{Key: f.Key, ClientPath: f.ClientPath, Secret: f.SecretName, MountPath: f.MountPath(),
			TaskManagers: f.inTaskManagers(delegationTokens)})
	}

	jmVolumes, jmMounts := podVolumes(id, ConfigFile, ConfigSecretName(id), "config", files, func(secretFile) bool { return true }, userSecrets)
	jm := corev1.Container{
		Name:            "jobmanager",
		Image:           cfg.String("kubernetes.container.image"),
		ImagePullPolicy: corev1.PullPolicy(cfg.String("kubernetes.container.image.pull-policy")),
		Command: []string{"sluice", "jobmanager",
			"--config", path.Join(ConfDir, ConfigFile),
			"--config-layer", path.Join(SecretsDir, "config", SecretsFile)},
		Ports: []corev1.ContainerPort{
			{Name: "rest", ContainerPort: int32(ports["rest"]), Protocol: corev1.ProtocolTCP},
			{Name: "rpc", ContainerPort: int32(ports["rpc"]), Protocol: corev1.ProtocolTCP},
			{Name: "blob", ContainerPort: int32(ports["blob"]), Protocol: corev1.ProtocolTCP},
		},
		// POD_IP: under high availability the leader publishes its own
		// address, not the Service's that every replica shares.
		Env: append([]corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}}}, env...),
		Resources:       resources(cfg.Float("kubernetes.jobmanager.cpu"), cfg.Bytes("kubernetes.jobmanager.memory")),
		VolumeMounts:    jmMounts,
		SecurityContext: containerSecurity(),
	}
	podSecurity := podSecurityContext(int64(cfg.Int("kubernetes.container.run-as-user")))
	replicas := int32(cfg.Int("kubernetes.jobmanager.replicas"))
	o.Deployment = &appsv1.Deployment{
		ObjectMeta: meta(id, "jobmanager"),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: Labels(id, "jobmanager")},
			// A new JobManager starts only after the old one is gone (Flink's choice).
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(id, "jobmanager")},
				Spec: corev1.PodSpec{
					ServiceAccountName: cfg.String("kubernetes.service-account"),
					SecurityContext:    podSecurity,
					Containers:         []corev1.Container{jm},
					Volumes:            jmVolumes,
				},
			},
		},
	}

	tmVolumes, tmMounts := podVolumes(id, TaskManagerConfigFile, TaskManagerConfigSecretName(id), "taskmanager-config", files,
		func(f secretFile) bool { return f.inTaskManagers(delegationTokens) }, userSecrets)
	noToken := false
	o.TaskManagerPod = &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Labels: Labels(id, "taskmanager")},
		Spec: corev1.PodSpec{
			ServiceAccountName: cfg.String("kubernetes.taskmanager.service-account"),
			// TaskManagers do not talk to the API server (the resource
			// manager turns the token on under high availability).
			AutomountServiceAccountToken: &noToken,
			RestartPolicy:                corev1.RestartPolicyNever,
			SecurityContext:              podSecurity,
			Containers: []corev1.Container{{
				Name:            "taskmanager",
				Image:           cfg.String("kubernetes.container.image"),
				ImagePullPolicy: corev1.PullPolicy(cfg.String("kubernetes.container.image.pull-policy")),
				Command: []string{"sluice", "taskmanager",
					"--config", path.Join(ConfDir, TaskManagerConfigFile),
					"--config-layer", path.Join(SecretsDir, "taskmanager-config", SecretsFile)},
				Env:             env,
				Resources:       resources(cfg.Float("kubernetes.taskmanager.cpu"), cfg.Bytes("kubernetes.taskmanager.memory")),
				VolumeMounts:    tmMounts,
				SecurityContext: containerSecurity(),
			}},
			Volumes: tmVolumes,
		},
	}
	template, err := sigsyaml.Marshal(o.TaskManagerPod)
	if err != nil {
		return nil, fmt.Errorf("encode the TaskManager pod template: %w", err)
	}
	o.ConfigMap = &corev1.ConfigMap{
		ObjectMeta: meta(ConfigMapName(id), ""),
		Data: map[string]string{
			ConfigFile:                 string(public),
			TaskManagerConfigFile:      string(tmPublic),
			TaskManagerPodTemplateFile: string(template),
		},
	}

	restType, headless := serviceType(cfg.String("kubernetes.rest-service.exposed.type"))
	o.RESTService = &corev1.Service{
		ObjectMeta: meta(RESTServiceName(id), "jobmanager"),
		Spec: corev1.ServiceSpec{
			Type:     restType,
			Selector: Labels(id, "jobmanager"),
			Ports:    []corev1.ServicePort{{Name: "rest", Port: int32(ports["rest"]), TargetPort: intstr.FromString("rest"), Protocol: corev1.ProtocolTCP}},
		},
	}
	if headless {
		o.RESTService.Spec.ClusterIP = corev1.ClusterIPNone
	}
	o.RPCService = &corev1.Service{
		ObjectMeta: meta(RPCServiceName(id), "jobmanager"),
		Spec: corev1.ServiceSpec{
			// Headless: TaskManagers reach the JobManager pod itself (Flink's internal service).
			ClusterIP: corev1.ClusterIPNone,
			Selector:  Labels(id, "jobmanager"),
			Ports: []corev1.ServicePort{
				{Name: "rpc", Port: int32(ports["rpc"]), TargetPort: intstr.FromString("rpc"), Protocol: corev1.ProtocolTCP},
				{Name: "blob", Port: int32(ports["blob"]), TargetPort: intstr.FromString("blob"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	return o, nil
}

func serviceType(s string) (corev1.ServiceType, bool) {
	switch s {
	case "NodePort":
		return corev1.ServiceTypeNodePort, false
	case "LoadBalancer":
		return corev1.ServiceTypeLoadBalancer, false
	case "Headless_ClusterIP":
		return corev1.ServiceTypeClusterIP, true
	}
	return corev1.ServiceTypeClusterIP, false
}

func resources(cpu float64, memory int64) corev1.ResourceRequirements {
	l := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(cpu*1000), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memory, resource.BinarySI),
	}
	return corev1.ResourceRequirements{Requests: l, Limits: l.DeepCopy()}
}

// podSecurityContext runs a pod's containers as uid (and group uid), not
// root, with fsGroup uid: the kubelet then writes the Secret volumes owned
// by root, group uid, mode 0440 (the 0400 asked for plus group read), which
// the containers can read and sluice's key checks accept (filemode). uid 0:
// none (the containers run as the image's user).
func podSecurityContext(uid int64) *corev1.PodSecurityContext {
	if uid == 0 {
		return nil
	}
	yes := true
	return &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, RunAsNonRoot: &yes}
}

// containerSecurity keeps a container from gaining privileges it did not
// start with.
func containerSecurity() *corev1.SecurityContext {
	no := false
	return &corev1.SecurityContext{AllowPrivilegeEscalation: &no, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
}

// podVolumes are a pod's volumes and mounts: the ConfigMap, its config
// Secret, the shipped files it gets (each read-only, 0400) and the user's
// kubernetes.secrets.
func podVolumes(id, configFile, configSecret, configSecretDir string, files []secretFile, include func(secretFile) bool, user []userSecret) ([]corev1.Volume, []corev1.VolumeMount) {
	mode := SecretFileMode
	vols := []corev1.Volume{
		{Name: "sluice-conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(id)},
			Items:                []corev1.KeyToPath{{Key: configFile, Path: configFile}},
		}}},
		{Name: "sluice-" + configSecretDir, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: configSecret, DefaultMode: &mode,
			Items: []corev1.KeyToPath{{Key: SecretsFile, Path: SecretsFile, Mode: &mode}},
		}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: "sluice-conf", MountPath: ConfDir, ReadOnly: true},
		{Name: "sluice-" + configSecretDir, MountPath: path.Join(SecretsDir, configSecretDir), ReadOnly: true},
	}
	for _, f := range files {
		if !include(f) {
			continue
		}
		vols = append(vols, corev1.Volume{Name: f.Name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: f.SecretName, DefaultMode: &mode,
			Items: []corev1.KeyToPath{{Key: f.FileName, Path: f.FileName, Mode: &mode}},
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: f.Name, MountPath: f.MountDir(), ReadOnly: true})
	}
	for i, u := range user {
		name := "user-secret-" + strconv.Itoa(i)
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: u.name, DefaultMode: &mode,
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: u.path, ReadOnly: true})
	}
	return vols, mounts
}

type userSecret struct{ name, path string }

func userSecretMounts(cfg *config.Config) ([]userSecret, error) {
	var out []userSecret
	for _, item := range cfg.StringList("kubernetes.secrets") {
		name, p, _ := splitOnce(item, ':')
		out = append(out, userSecret{name: name, path: p})
	}
	return out, nil
}

func splitOnce(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func secretEnv(cfg *config.Config) ([]corev1.EnvVar, error) {
	refs, err := config.ParseSecretKeyRefs(cfg.String("kubernetes.env.secretKeyRef"))
	if err != nil {
		return nil, config.KeyError("kubernetes.env.secretKeyRef", err)
	}
	var env []corev1.EnvVar
	for _, r := range refs {
		env = append(env, corev1.EnvVar{Name: r.Env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: r.Secret}, Key: r.Key,
		}}})
	}
	return env, nil
}

// effectiveConfig is the configuration the pods run with: the client's,
// with every shipped file's key pointing at its mount, the client-only keys
// removed and the pods' network defaults.
func effectiveConfig(cfg *config.Config, files []secretFile, id, ns string) (*config.Config, error) {
	eff := cfg.Clone()
	for _, f := range files {
		if err := eff.Set(f.Key, f.MountPath()); err != nil {
			return nil, err
		}
	}
	// The generic fallbacks stood for keys now set explicitly; their
	// client paths mean nothing in a pod.
	for _, s := range shippedFiles {
		k, _ := config.Lookup(s.Key)
		for _, fb := range k.Fallbacks {
			eff.Unset(fb)
		}
	}
	eff.Unset("kubernetes.config.file")
	eff.Unset("kubernetes.context")
	set := func(key, value string) error {
		if err := eff.Set(key, value); err != nil {
			return fmt.Errorf("set %s in the session's configuration: %w", key, err)
		}
		return nil
	}
	if err := set("kubernetes.cluster-id", id); err != nil {
		return nil, err
	}
	// The JobManager runs its Kubernetes resource manager (TaskManager
	// pods on demand) when it knows it was deployed natively.
	if t := eff.String("execution.target"); t != "kubernetes-application" {
		if err := set("execution.target", "kubernetes-session"); err != nil {
			return nil, err
		}
	}
	if err := set("kubernetes.namespace", ns); err != nil {
		return nil, err
	}
	defaults := [][2]string{
		{"jobmanager.rpc.address", RPCServiceName(id) + "." + ns},
		{"rest.address", RESTServiceName(id) + "." + ns},
		{"jobmanager.bind-host", "0.0.0.0"},
		{"rest.bind-address", "0.0.0.0"},
		{"taskmanager.bind-host", "0.0.0.0"},
		{"blob.server.port", strconv.Itoa(defaultBlobPort)},
	}
	for _, d := range defaults {
		if !eff.IsSet(d[0]) {
			if err := set(d[0], d[1]); err != nil {
				return nil, err
			}
		}
	}
	return eff, nil
}

// splitSecrets renders the effective configuration as config.yaml without
// any sensitive value, and the sensitive values as the JobManager's and
// the TaskManagers' configuration layers.
func splitSecrets(eff *config.Config) (public, jm, tm []byte, err error) {
	pub, jmm, tmm := map[string]any{}, map[string]any{}, map[string]any{}
	for _, k := range eff.SetKeys() {
		v, _ := eff.Raw(k)
		if !config.IsSensitive(k) {
			pub[k] = v
			continue
		}
		jmm[k] = v
		if taskManagerSecretKey(k) {
			tmm[k] = v
		}
	}
	enc := func(m map[string]any, header string) ([]byte, error) {
		b, err := yaml.Marshal(m)
		if err != nil {
			return nil, err
		}
		return append([]byte(header), b...), nil
	}
	if public, err = enc(pub, "# Effective configuration of this session, written by sluice kubernetes-session start.\n# Passwords and tokens are not here: they are in the Secrets mounted under "+SecretsDir+".\n"); err != nil {
		return nil, nil, nil, err
	}
	if jm, err = enc(jmm, ""); err != nil {
		return nil, nil, nil, err
	}
	if tm, err = enc(tmm, ""); err != nil {
		return nil, nil, nil, err
	}
	return public, jm, tm, nil
}
