package session

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/config"
	hakube "github.com/sluice-dev/sluice/internal/ha/kubernetes"
	"github.com/sluice-dev/sluice/internal/kube/resourcemanager"
)

// clientFiles writes one distinct file per shipped key and returns the
// configuration overrides that point at them, plus passwords and a token.
func clientFiles(t *testing.T) (map[string][]byte, []string) {
	t.Helper()
	dir := t.TempDir()
	content := map[string][]byte{}
	var defs []string
	for _, s := range shippedFiles {
		// The internal key store comes through the generic fallback, as in
		// Flink configurations that set security.ssl.keystore only.
		key := s.Key
		switch key {
		case "security.ssl.internal.keystore", "security.ssl.rest.keystore":
			continue
		}
		p := filepath.Join(dir, s.Name+".bin")
		data := []byte("CONTENT-OF-" + s.Name + "\x00\x01")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		content[key] = data
		defs = append(defs, key+"="+p)
	}
	ks := filepath.Join(dir, "shared.p12")
	ksData := []byte("KEYSTORE-BYTES")
	if err := os.WriteFile(ks, ksData, 0o600); err != nil {
		t.Fatal(err)
	}
	content["security.ssl.internal.keystore"] = ksData
	content["security.ssl.rest.keystore"] = ksData
	defs = append(defs,
		"security.ssl.keystore="+ks,
		"security.ssl.internal.keystore-password=INTERNAL-PW",
		"security.ssl.rest.keystore-password=REST-PW",
		"security.cluster.join-token=JOIN-TOKEN-VALUE",
		"kubernetes.cluster-id=demo",
		"kubernetes.namespace=prod",
		"kubernetes.config.file="+filepath.Join(dir, "kubeconfig"),
		"kubernetes.secrets=extra:/opt/extra",
		"kubernetes.env.secretKeyRef=env:DB_PASSWORD,secret:db,key:password",
		"kubernetes.jobmanager.replicas=2",
		"rest.port=8443",
	)
	return content, defs
}

func load(t *testing.T, defs ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load("", defs)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func secretByName(o *Objects, name string) *corev1.Secret {
	for _, s := range o.Secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func TestBuildShipsEverySecretFile(t *testing.T) {
	content, defs := clientFiles(t)
	o, err := Build(load(t, defs...))
	if err != nil {
		t.Fatal(err)
	}
	public := o.ConfigMap.Data[ConfigFile]
	var pub map[string]any
	if err := yaml.Unmarshal([]byte(public), &pub); err != nil {
		t.Fatal(err)
	}
	jmLayer := secretByName(o, ConfigSecretName("demo")).Data[SecretsFile]
	var jm map[string]any
	if err := yaml.Unmarshal(jmLayer, &jm); err != nil {
		t.Fatal(err)
	}
	for _, s := range shippedFiles {
		sec := secretByName(o, "demo-"+s.Name)
		if sec == nil {
			t.Errorf("%s: no Secret demo-%s", s.Key, s.Name)
			continue
		}
		if len(sec.Data) != 1 {
			t.Errorf("Secret %s: %d keys, want 1", sec.Name, len(sec.Data))
		}
		for name, data := range sec.Data {
			if !bytes.Equal(data, content[s.Key]) {
				t.Errorf("Secret %s: data %q, want the client file's %q", sec.Name, data, content[s.Key])
			}
			want := SecretsDir + "/" + s.Name + "/" + name
			got := pub[s.Key]
			if got == nil {
				got = jm[s.Key] // keys named like secrets (token.file) live in the layer
			}
			if got != want {
				t.Errorf("%s = %v in the pods' configuration, want the mount path %s", s.Key, got, want)
			}
		}
	}
	// Nothing secret in the ConfigMap: no password, no token, no file content.
	for _, secret := range []string{"INTERNAL-PW", "REST-PW", "JOIN-TOKEN-VALUE", "CONTENT-OF-", "KEYSTORE-BYTES"} {
		for k, v := range o.ConfigMap.Data {
			if strings.Contains(v, secret) {
				t.Errorf("ConfigMap %s holds %q", k, secret)
			}
		}
	}
	for _, k := range []string{"security.ssl.internal.keystore-password", "security.ssl.rest.keystore-password", "security.cluster.join-token"} {
		if _, ok := pub[k]; ok {
			t.Errorf("config.yaml sets %s", k)
		}
		if jm[k] == nil {
			t.Errorf("the JobManager's layer lacks %s", k)
		}
	}
	// Client-only keys and the generic fallback (a client path) are gone.
	for _, k := range []string{"kubernetes.config.file", "security.ssl.keystore"} {
		if _, ok := pub[k]; ok {
			t.Errorf("config.yaml still sets %s = %v", k, pub[k])
		}
	}
	if pub["kubernetes.cluster-id"] != "demo" || pub["kubernetes.namespace"] != "prod" || pub["execution.target"] != "kubernetes-session" {
		t.Errorf("config.yaml: cluster-id %v, namespace %v, execution.target %v", pub["kubernetes.cluster-id"], pub["kubernetes.namespace"], pub["execution.target"])
	}
	// The TaskManagers' layer has the internal store's password and the join token only.
	var tm map[string]any
	if err := yaml.Unmarshal(secretByName(o, TaskManagerConfigSecretName("demo")).Data[SecretsFile], &tm); err != nil {
		t.Fatal(err)
	}
	if tm["security.ssl.internal.keystore-password"] != "INTERNAL-PW" || tm["security.cluster.join-token"] != "JOIN-TOKEN-VALUE" {
		t.Errorf("TaskManager layer %v lacks the internal password or join token", tm)
	}
	if _, ok := tm["security.ssl.rest.keystore-password"]; ok {
		t.Error("TaskManager layer holds the REST key store's password")
	}
}

// mounts returns a pod's Secret volumes (secret name -> mount) and checks
// that each is read-only with files of mode 0400.
func secretMounts(t *testing.T, spec corev1.PodSpec) map[string]corev1.VolumeMount {
	t.Helper()
	byVolume := map[string]corev1.VolumeMount{}
	for _, m := range spec.Containers[0].VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("mount %s (%s) is not read-only", m.Name, m.MountPath)
		}
		byVolume[m.Name] = m
	}
	out := map[string]corev1.VolumeMount{}
	for _, v := range spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
			t.Errorf("Secret volume %s: default mode %v, want 0400", v.Name, v.Secret.DefaultMode)
		}
		for _, it := range v.Secret.Items {
			if it.Mode == nil || *it.Mode != 0o400 {
				t.Errorf("Secret volume %s item %s: mode %v, want 0400", v.Name, it.Key, it.Mode)
			}
		}
		out[v.Secret.SecretName] = byVolume[v.Name]
	}
	return out
}

func TestKeytabOnlyInJobManagerWithDelegationTokens(t *testing.T) {
	_, defs := clientFiles(t)
	for _, tc := range []struct {
		tokens       string
		keytabInTMs  bool
		keytabLabels string
	}{
		{"true", false, "jobmanager"},
		{"false", true, ""},
	} {
		o, err := Build(load(t, append(defs, "security.delegation.tokens.enabled="+tc.tokens)...))
		if err != nil {
			t.Fatal(err)
		}
		jm := secretMounts(t, o.Deployment.Spec.Template.Spec)
		tm := secretMounts(t, o.TaskManagerPod.Spec)
		if _, ok := jm["demo-keytab"]; !ok {
			t.Errorf("tokens=%s: the JobManager pod does not mount the keytab", tc.tokens)
		}
		if _, ok := tm["demo-keytab"]; ok != tc.keytabInTMs {
			t.Errorf("tokens=%s: keytab in TaskManager pods = %v, want %v", tc.tokens, ok, tc.keytabInTMs)
		}
		for _, jmOnly := range []string{"demo-rest-keystore", "demo-rest-token-file", "demo-acl-policy", "demo-rest-keytab", "demo-config-secrets"} {
			if _, ok := tm[jmOnly]; ok {
				t.Errorf("TaskManager pods mount %s", jmOnly)
			}
			if _, ok := jm[jmOnly]; !ok {
				t.Errorf("the JobManager pod does not mount %s", jmOnly)
			}
		}
		for _, both := range []string{"demo-internal-keystore", "demo-internal-truststore", "demo-krb5-conf", "demo-checkpoint-key", "extra"} {
			if _, ok := tm[both]; !ok {
				t.Errorf("TaskManager pods do not mount %s", both)
			}
		}
		// Their configuration names only what they mount, and no Kerberos
		// login of their own with delegation tokens on.
		var tmConf map[string]any
		if err := yaml.Unmarshal([]byte(o.ConfigMap.Data[TaskManagerConfigFile]), &tmConf); err != nil {
			t.Fatal(err)
		}
		if _, ok := tmConf["security.kerberos.login.keytab"]; ok != tc.keytabInTMs {
			t.Errorf("tokens=%s: keytab in the TaskManagers' configuration = %v, want %v", tc.tokens, ok, tc.keytabInTMs)
		}
		for _, k := range []string{"security.ssl.rest.keystore", "security.authorization.acl.policy-file", "security.rest.authentication.kerberos.keytab"} {
			if _, ok := tmConf[k]; ok {
				t.Errorf("the TaskManagers' configuration sets %s, whose file their pods do not mount", k)
			}
		}
		if tmConf["security.ssl.internal.keystore"] == nil || tmConf["security.kerberos.krb5-conf.path"] == nil {
			t.Errorf("the TaskManagers' configuration lacks the internal key store or krb5.conf: %v", tmConf)
		}
		tmCmd := strings.Join(o.TaskManagerPod.Spec.Containers[0].Command, " ")
		if !strings.Contains(tmCmd, "--config /opt/sluice/conf/"+TaskManagerConfigFile) {
			t.Errorf("TaskManager command %q does not read %s", tmCmd, TaskManagerConfigFile)
		}
		// The template in the ConfigMap is the one TaskManagers get.
		var fromCM corev1.Pod
		if err := sigsyaml.Unmarshal([]byte(o.ConfigMap.Data[TaskManagerPodTemplateFile]), &fromCM); err != nil {
			t.Fatal(err)
		}
		if _, ok := secretMounts(t, fromCM.Spec)["demo-keytab"]; ok != tc.keytabInTMs {
			t.Errorf("tokens=%s: the ConfigMap's TaskManager template mounts the keytab = %v", tc.tokens, ok)
		}
		if got := o.Secrets[slices.IndexFunc(o.Secrets, func(s *corev1.Secret) bool { return s.Name == "demo-keytab" })].Labels[LabelComponent]; got != tc.keytabLabels {
			t.Errorf("tokens=%s: keytab Secret component label %q, want %q", tc.tokens, got, tc.keytabLabels)
		}
	}
}

func TestBuildPodSpec(t *testing.T) {
	_, defs := clientFiles(t)
	o, err := Build(load(t, append(defs, "kubernetes.container.image=registry.example/sluice:1.0", "kubernetes.service-account=sluice-jm",
		"kubernetes.jobmanager.cpu=0.5", "kubernetes.jobmanager.memory=512mb", "kubernetes.rest-service.exposed.type=NodePort",
		"kubernetes.taskmanager.service-account=sluice-tm", "kubernetes.container.image.pull-policy=Always")...))
	if err != nil {
		t.Fatal(err)
	}
	spec := o.Deployment.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != "registry.example/sluice:1.0" || spec.ServiceAccountName != "sluice-jm" || *o.Deployment.Spec.Replicas != 2 {
		t.Errorf("image %s, service account %s, replicas %d", c.Image, spec.ServiceAccountName, *o.Deployment.Spec.Replicas)
	}
	if c.ImagePullPolicy != corev1.PullAlways || o.TaskManagerPod.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("pull policy %s", c.ImagePullPolicy)
	}
	if sa := o.TaskManagerPod.Spec.ServiceAccountName; sa != "sluice-tm" {
		t.Errorf("TaskManager service account %q, want sluice-tm", sa)
	}
	if got := c.Resources.Requests.Cpu().MilliValue(); got != 500 {
		t.Errorf("cpu request %dm, want 500m", got)
	}
	if got := c.Resources.Limits.Memory().Value(); got != 512<<20 {
		t.Errorf("memory limit %d, want 512 MiB", got)
	}
	if strings.Join(c.Command, " ") != "sluice jobmanager --config /opt/sluice/conf/config.yaml --config-layer /opt/sluice/secrets/config/secrets.yaml" {
		t.Errorf("command %q", c.Command)
	}
	if len(c.Env) != 2 || c.Env[0].Name != "POD_IP" || c.Env[1].Name != "DB_PASSWORD" || c.Env[1].ValueFrom.SecretKeyRef.Name != "db" || c.Env[1].ValueFrom.SecretKeyRef.Key != "password" {
		t.Errorf("env %+v", c.Env)
	}
	if o.RESTService.Spec.Type != corev1.ServiceTypeNodePort || o.RESTService.Spec.Ports[0].Port != 8443 {
		t.Errorf("REST service %+v", o.RESTService.Spec)
	}
	if o.RPCService.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("RPC service is not headless: %+v", o.RPCService.Spec)
	}
}

func TestBuildErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		defs []string
		want string
	}{
		{[]string{"security.kerberos.login.keytab=/nonexistent/krb5.keytab"}, "security.kerberos.login.keytab"},
		{[]string{"rest.port=0"}, "rest.port"},
	} {
		_, err := Build(load(t, append(tc.defs, "kubernetes.cluster-id=demo")...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.defs, err, tc.want)
		}
	}
}

// Every registered key whose name says it holds a path to a file is either
// shipped or deliberately not: a new key cannot silently stay on the client.
func TestEveryFileKeyIsClassified(t *testing.T) {
	shipped := map[string]bool{}
	for _, s := range shippedFiles {
		shipped[s.Key] = true
	}
	pathLike := func(k string) bool {
		for _, s := range []string{"keystore", "truststore", "keytab", "file", "path", "-dir", "key-file", "policy-file"} {
			if strings.HasSuffix(k, s) {
				return true
			}
		}
		return false
	}
	for _, k := range config.KeyNames() {
		if key, _ := config.Lookup(k); key.Type != config.String || !pathLike(k) || shipped[k] {
			continue
		}
		if _, ok := notShipped[k]; !ok && !strings.HasSuffix(k, "working-dir") {
			t.Errorf("key %s looks like a file path but is neither in shippedFiles nor in notShipped", k)
		}
	}
}

func TestStartOwnsEverythingAndStopDeletesIt(t *testing.T) {
	_, defs := clientFiles(t)
	o, err := Build(load(t, defs...))
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	ctx := context.Background()
	if err := Start(ctx, client, o); err != nil {
		t.Fatal(err)
	}
	d, err := client.AppsV1().Deployments("prod").Get(ctx, "demo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	left, err := Remaining(ctx, client, "prod", "demo")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ConfigMap/demo-config", "Deployment/demo", "Service/demo", "Service/demo-rest"}
	for _, s := range o.Secrets {
		want = append(want, "Secret/"+s.Name)
	}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("created %v\nwant %v", left, want)
	}
	secrets, _ := client.CoreV1().Secrets("prod").List(ctx, metav1.ListOptions{})
	cms, _ := client.CoreV1().ConfigMaps("prod").List(ctx, metav1.ListOptions{})
	svcs, _ := client.CoreV1().Services("prod").List(ctx, metav1.ListOptions{})
	var owned []metav1.Object
	for i := range secrets.Items {
		owned = append(owned, &secrets.Items[i])
	}
	for i := range cms.Items {
		owned = append(owned, &cms.Items[i])
	}
	for i := range svcs.Items {
		owned = append(owned, &svcs.Items[i])
	}
	for _, obj := range owned {
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].Kind != "Deployment" || refs[0].Name != "demo" || refs[0].UID != d.UID {
			t.Errorf("%s: owner references %+v, want the Deployment", obj.GetName(), refs)
		}
	}
	// A second start of the same id is refused.
	if err := Start(ctx, client, o); err == nil || !strings.Contains(err.Error(), "already runs") {
		t.Errorf("second start: %v", err)
	}
	infos, err := List(ctx, client, "prod")
	if err != nil || len(infos) != 1 || infos[0].ClusterID != "demo" || infos[0].Replicas != 2 {
		t.Errorf("list: %+v, %v", infos, err)
	}
	// A TaskManager pod the JobManager made, with the session's labels, goes too.
	tmPod := o.TaskManagerPod.DeepCopy()
	tmPod.Name, tmPod.Namespace = "demo-taskmanager-1-1", "prod"
	if _, err := client.CoreV1().Pods("prod").Create(ctx, tmPod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Stop(ctx, client, "prod", "demo"); err != nil {
		t.Fatal(err)
	}
	if left, err := Remaining(ctx, client, "prod", "demo"); err != nil || len(left) != 0 {
		t.Errorf("after stop: %v, %v", left, err)
	}
	// Stopping again is not an error.
	if err := Stop(ctx, client, "prod", "demo"); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestRBACManifest(t *testing.T) {
	y, err := RBACManifest("prod", "demo", "sluice-jm", RBACOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role := JobManagerRole("prod", "demo", RBACOptions{})
	var resources []string
	for _, r := range role.Rules {
		resources = append(resources, r.Resources...)
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") {
			t.Errorf("wildcard in %+v", r)
		}
	}
	slices.Sort(resources)
	resources = slices.Compact(resources)
	if !slices.Equal(resources, []string{"configmaps", "deployments", "leases", "pods"}) {
		t.Errorf("resources %v, want configmaps, deployments (its own), leases, pods", resources)
	}
	for _, want := range []string{"kind: Role\n", "kind: RoleBinding\n", "namespace: prod", "name: sluice-jm"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("manifest lacks %q:\n%s", want, y)
		}
	}
	if strings.Contains(string(y), "ClusterRole") || strings.Contains(string(y), "secrets") {
		t.Errorf("manifest grants beyond the namespace or Secrets:\n%s", y)
	}

	// Automatic TLS: reading and updating only the JobManager's own two Secrets.
	auto := JobManagerRole("prod", "demo", RBACOptions{AutoTLS: true})
	for _, r := range auto.Rules {
		if !slices.Contains(r.Resources, "secrets") {
			continue
		}
		if slices.Contains(r.Verbs, "list") || slices.Contains(r.Verbs, "watch") {
			t.Errorf("secrets rule %+v lists or watches", r)
		}
		if (slices.Contains(r.Verbs, "get") || slices.Contains(r.Verbs, "update")) &&
			!slices.Equal(r.ResourceNames, []string{resourcemanager.JoinTokenSecretName("demo"), hakube.ClusterCASecretName("demo"), hakube.CARegistrySecretName("demo")}) {
			t.Errorf("secrets rule %+v is not limited to the join-token and cluster-CA Secrets", r)
		}
	}
	// The TaskManagers' own account under HA reads the cluster ConfigMap only.
	y, err = RBACManifest("prod", "demo", "sluice-jm", RBACOptions{TaskManagerServiceAccount: "sluice-tm"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "name: sluice-tm") || !strings.Contains(string(y), hakube.ClusterConfigMapName("demo")) {
		t.Errorf("no TaskManager role for sluice-tm:\n%s", y)
	}
}

// A missing namespace is reported with what to do.
func TestStartErrorsSayWhatToDo(t *testing.T) {
	_, defs := clientFiles(t)
	o, err := Build(load(t, defs...))
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	client.PrependReactor("create", "deployments", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "prod")
	})
	err = Start(context.Background(), client, o)
	if err == nil || !strings.Contains(err.Error(), "kubernetes.namespace") {
		t.Errorf("start in a missing namespace: %v", err)
	}
}

// A start that fails half-way deletes what it created.
func TestFailedStartCleansUp(t *testing.T) {
	_, defs := clientFiles(t)
	o, err := Build(load(t, defs...))
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	client.PrependReactor("create", "configmaps", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "demo-config", nil)
	})
	if err := Start(context.Background(), client, o); err == nil {
		t.Fatal("start succeeded although the ConfigMap could not be created")
	}
	if left, err := Remaining(context.Background(), client, "prod", "demo"); err != nil || len(left) != 0 {
		t.Errorf("after a failed start: %v left (%v)", left, err)
	}
}

// The pods run as a non-root user with that user's group as fsGroup, so
// they can read their Secret files (which the kubelet then writes owned by
// root, group fsGroup, 0440, and sluice accepts: internal/security/filemode);
// every Secret volume still asks for 0400. kubernetes.container.run-as-user: 0
// leaves the security context out (the image's user).
func TestPodsRunAsNonRootWithFSGroup(t *testing.T) {
	_, defs := clientFiles(t)
	for _, tc := range []struct {
		name string
		defs []string
		uid  int64
	}{
		{"default", nil, 9999},
		{"configured", []string{"kubernetes.container.run-as-user=1001"}, 1001},
		{"root", []string{"kubernetes.container.run-as-user=0"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Build(load(t, append(slices.Clone(defs), tc.defs...)...))
			if err != nil {
				t.Fatal(err)
			}
			client := fake.NewClientset()
			ctx := context.Background()
			if err := Start(ctx, client, o); err != nil {
				t.Fatal(err)
			}
			d, err := client.AppsV1().Deployments("prod").Get(ctx, "demo", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cm, err := client.CoreV1().ConfigMaps("prod").Get(ctx, "demo-config", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var tm corev1.Pod
			if err := sigsyaml.Unmarshal([]byte(cm.Data[TaskManagerPodTemplateFile]), &tm); err != nil {
				t.Fatal(err)
			}
			for name, spec := range map[string]corev1.PodSpec{"jobmanager": d.Spec.Template.Spec, "taskmanager": tm.Spec} {
				sc := spec.SecurityContext
				if tc.uid == 0 {
					if sc != nil {
						t.Errorf("%s: security context %+v with run-as-user 0", name, sc)
					}
				} else if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != tc.uid || sc.RunAsGroup == nil || *sc.RunAsGroup != tc.uid ||
					sc.FSGroup == nil || *sc.FSGroup != tc.uid || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
					t.Errorf("%s: pod security context %+v, want runAsUser/runAsGroup/fsGroup %d and runAsNonRoot", name, sc, tc.uid)
				}
				c := spec.Containers[0].SecurityContext
				if c == nil || c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation || c.Capabilities == nil || !slices.Equal(c.Capabilities.Drop, []corev1.Capability{"ALL"}) {
					t.Errorf("%s: container security context %+v", name, c)
				}
				for _, v := range spec.Volumes {
					if v.Secret == nil {
						continue
					}
					if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
						t.Errorf("%s: Secret volume %s mode %v, want 0400", name, v.Name, v.Secret.DefaultMode)
					}
				}
				for _, m := range spec.Containers[0].VolumeMounts {
					if !m.ReadOnly {
						t.Errorf("%s: mount %s is writable", name, m.MountPath)
					}
				}
			}
		})
	}
}
