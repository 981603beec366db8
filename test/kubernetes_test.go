package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/kube/session"
	"github.com/sluice-dev/sluice/test/k8s"
	"github.com/sluice-dev/sluice/test/kdc"
)

// sessionEnv is a client machine's secured configuration for a session:
// every kind of secret material sluice ships, as files of the client.
type sessionEnv struct {
	defines    []string
	files      map[string]string // key -> client file
	secrets    []string          // values that must never reach a ConfigMap
	restPort   int
	token      string
	ca         string
	kubeconfig string
	ns         string
	id         string
	input      string // the word count's input file
	out        string // and its output directory
}

func newSessionEnv(t *testing.T, api *k8s.APIServer, ns, id string) *sessionEnv {
	t.Helper()
	k := kdc.Start(t, kdc.Options{})
	k.AddPrincipal(t, "sluice/jobmanager")
	keytab := k.Keytab(t, "sluice/jobmanager")

	certs := filepath.Join(t.TempDir(), "certs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, stderr, code := runSluice(ctx, t, "security", "create-certs", "--out", certs, "--hosts", "localhost,127.0.0.1", "--cluster-id", id)
	if code != 0 {
		t.Fatalf("create-certs: %s", stderr)
	}
	m := regexp.MustCompile(`Password of internal.p12 \(shown once\): (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create-certs printed no password:\n%s", out)
	}
	p12Password := m[1]

	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	token := newToken(t, tokens, "alice", "ops")
	input := writeSample(t)
	outDir := filepath.Join(t.TempDir(), "out")
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`roles:
  wordcounter:
    - verbs: [view]
      resources: [cluster, taskmanagers, jobs, "job/*"]
    - verbs: [submit]
      resources: [jobs]
    - verbs: [read]
      resources: ["file:%s/*"]
    - verbs: [write]
      resources: ["file:%s/*"]
bindings:
  - role: wordcounter
    users: [alice]
`, filepath.Dir(input), filepath.Dir(outDir))), 0o600); err != nil {
		t.Fatal(err)
	}
	ckptKey := filepath.Join(dir, "checkpoint.key")
	if err := os.WriteFile(ckptKey, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &sessionEnv{
		restPort:   freePort(t),
		token:      token,
		ca:         filepath.Join(certs, "ca.crt"),
		kubeconfig: api.AdminKubeconfig,
		ns:         ns,
		id:         id,
		input:      input,
		out:        outDir,
		files: map[string]string{
			"security.kerberos.login.keytab":          keytab,
			"security.kerberos.krb5-conf.path":        k.Krb5Conf,
			"security.ssl.internal.keystore":          filepath.Join(certs, "internal.p12"),
			"security.ssl.internal.truststore":        filepath.Join(certs, "truststore.pem"),
			"security.ssl.rest.keystore":              filepath.Join(certs, "rest.pem"),
			"security.rest.authentication.token.file": tokens,
			"security.authorization.acl.policy-file":  policy,
			"state.checkpoints.encryption.key-file":   ckptKey,
		},
		secrets: []string{p12Password},
	}
	for key, f := range e.files {
		e.defines = append(e.defines, key+"="+f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e.secrets = append(e.secrets, string(data))
	}
	e.defines = append(e.defines,
		"kubernetes.config.file="+api.AdminKubeconfig,
		"kubernetes.namespace="+ns,
		"kubernetes.cluster-id="+id,
		"kubernetes.jobmanager.cpu=0.5",
		"kubernetes.jobmanager.memory=256mb",
		"security.kerberos.login.principal=sluice/jobmanager@"+k.Realm,
		"security.ssl.internal.enabled=true",
		"security.ssl.internal.keystore-password="+p12Password,
		"security.ssl.rest.enabled=true",
		"security.authorization.mode=acl",
		// Pods share the host's network on the test node: ports of their own.
		"rest.port="+strconv.Itoa(e.restPort),
		"jobmanager.rpc.port="+strconv.Itoa(freePort(t)),
		"blob.server.port="+strconv.Itoa(freePort(t)),
		// No cluster DNS on the test node: TaskManager pods reach the
		// JobManager and each other on loopback.
		"jobmanager.rpc.address=127.0.0.1",
		"taskmanager.host=127.0.0.1",
		"taskmanager.bind-host=127.0.0.1",
		"taskmanager.numberOfTaskSlots=2",
		"kubernetes.taskmanager.cpu=0.1",
		"kubernetes.taskmanager.memory=128mb",
		"resourcemanager.taskmanager-timeout=8 s",
	)
	return e
}

func (e *sessionEnv) sluice(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, d := range e.defines {
		args = append(args, "-D", d)
	}
	return runSluice(ctx, t, args...)
}

// TestKubernetesSession: kubernetes-session start against a real API server
// creates the JobManager Deployment, its Services, the ConfigMap and one
// Secret per secret file, with the right content; the JobManager pod runs
// from them (Kerberos login from the shipped keytab, internal TLS from the
// shipped PKCS#12 and its password, REST over TLS with the shipped token
// file and ACL policy) and answers REST; its ServiceAccount, bound to the
// role `rbac` prints, is denied Secrets by the real RBAC authorizer; stop
// leaves nothing behind.
func TestKubernetesSession(t *testing.T) {
	api := k8s.Shared(t)
	node := api.Node(t, sluiceBin)
	ns := api.Namespace(t, "session")
	const id = "wordcount"
	e := newSessionEnv(t, api, ns, id)
	ctx := context.Background()
	c := api.Client

	// The role first, as the docs say: applied from what rbac prints.
	out, stderr, code := e.sluice(t, "kubernetes-session", "rbac")
	if code != 0 {
		t.Fatalf("rbac: %s", stderr)
	}
	applyRBAC(t, api, out)

	out, stderr, code = e.sluice(t, "kubernetes-session", "start")
	if code != 0 {
		t.Fatalf("kubernetes-session start: exit %d\n%s\n%s", code, out, stderr)
	}
	t.Cleanup(func() { e.sluice(t, "kubernetes-session", "stop") })
	for _, want := range []string{"Session wordcount started in namespace " + ns, "security.kerberos.login.keytab", "/opt/sluice/secrets/keytab/"} {
		if !strings.Contains(out, want) {
			t.Errorf("start output lacks %q:\n%s", want, out)
		}
	}

	// Read everything back through the API.
	d, err := c.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("JobManager Deployment: %v", err)
	}
	for _, name := range []string{session.RESTServiceName(id), session.RPCServiceName(id)} {
		svc, err := c.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Service %s: %v", name, err)
			continue
		}
		checkOwner(t, svc.ObjectMeta, d.UID)
	}
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, session.ConfigMapName(id), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap: %v", err)
	}
	checkOwner(t, cm.ObjectMeta, d.UID)
	for k, v := range cm.Data {
		for _, s := range e.secrets {
			if strings.Contains(v, strings.TrimSpace(s)) {
				t.Errorf("ConfigMap key %s holds secret material %.20q", k, s)
			}
		}
		if strings.Contains(v, e.kubeconfig) {
			t.Errorf("ConfigMap key %s names the client's kubeconfig", k)
		}
	}
	var conf map[string]any
	if err := sigsyaml.Unmarshal([]byte(cm.Data[session.ConfigFile]), &conf); err != nil {
		t.Fatal(err)
	}
	secrets, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: session.SelectorFor(id)})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]corev1.Secret{}
	for _, s := range secrets.Items {
		byName[s.Name] = s
		checkOwner(t, s.ObjectMeta, d.UID)
	}
	suffix := map[string]string{
		"security.kerberos.login.keytab": "keytab", "security.kerberos.krb5-conf.path": "krb5-conf",
		"security.ssl.internal.keystore": "internal-keystore", "security.ssl.internal.truststore": "internal-truststore",
		"security.ssl.rest.keystore": "rest-keystore", "security.rest.authentication.token.file": "rest-token-file",
		"security.authorization.acl.policy-file": "acl-policy", "state.checkpoints.encryption.key-file": "checkpoint-key",
	}
	for key, file := range e.files {
		want, _ := os.ReadFile(file)
		s, ok := byName[id+"-"+suffix[key]]
		if !ok {
			t.Errorf("%s: no Secret %s-%s", key, id, suffix[key])
			continue
		}
		got := s.Data[filepath.Base(file)]
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Secret %s holds %d bytes, not the client file's %d", key, s.Name, len(got), len(want))
		}
	}
	var layer map[string]any
	if err := sigsyaml.Unmarshal(byName[session.ConfigSecretName(id)].Data[session.SecretsFile], &layer); err != nil {
		t.Fatal(err)
	}
	if layer["security.ssl.internal.keystore-password"] == nil {
		t.Errorf("the config Secret lacks the key store password: %v", layer)
	}
	if got := conf["security.kerberos.login.keytab"]; got != "/opt/sluice/secrets/keytab/"+filepath.Base(e.files["security.kerberos.login.keytab"]) {
		t.Errorf("config.yaml: keytab %v, want its mount path", got)
	}
	// Delegation tokens are on by default: the TaskManagers' template mounts no keytab.
	var tmPod corev1.Pod
	if err := sigsyaml.Unmarshal([]byte(cm.Data[session.TaskManagerPodTemplateFile]), &tmPod); err != nil {
		t.Fatal(err)
	}
	for _, v := range tmPod.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == id+"-keytab" {
			t.Error("the TaskManager pod template mounts the keytab although delegation tokens are on")
		}
	}

	// The JobManager pod runs on the test node and answers REST over TLS.
	var jmPod *corev1.Pod
	k8s.WaitFor(t, 90*time.Second, "JobManager pod Running", func(ctx context.Context) error {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: session.SelectorFor(id) + ",component=jobmanager"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d JobManager pods", len(pods.Items))
		}
		jmPod = &pods.Items[0]
		if jmPod.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s %s %s", jmPod.Status.Phase, jmPod.Status.Reason, jmPod.Status.Message)
		}
		return nil
	})
	hc := restClient(t, e.ca)
	var who map[string]any
	k8s.WaitFor(t, 90*time.Second, "JobManager REST /whoami as alice", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://localhost:%d/whoami", e.restPort), nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := hc.Do(req)
		if err != nil {
			if p, gerr := c.CoreV1().Pods(ns).Get(ctx, jmPod.Name, metav1.GetOptions{}); gerr == nil && p.Status.Phase == corev1.PodFailed {
				t.Fatalf("JobManager pod failed:\n%s", node.PodLog(jmPod, "jobmanager"))
			}
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(&who)
	})
	if who["username"] != "alice" {
		t.Errorf("whoami: %v", who)
	}
	jmLog := node.PodLog(jmPod, "jobmanager")
	if !strings.Contains(jmLog, "sluice/jobmanager@") {
		t.Errorf("the JobManager log does not show the Kerberos login of sluice/jobmanager:\n%s", jmLog)
	}

	// A -p 4 word count runs on TaskManager pods the JobManager creates
	// from the session's template (2 slots each), over internal mutual TLS
	// with the shipped key store; with delegation tokens on (the default)
	// no TaskManager pod mounts the keytab; idle, they are deleted.
	out, stderr, code = runSluice(context.Background(), t, "run", "examples/wordcount.yaml", "-p", "4",
		"--param", "input="+e.input, "--param", "output="+e.out,
		"--jobmanager", fmt.Sprintf("https://localhost:%d", e.restPort), "--cacert", e.ca, "--token", e.token)
	if code != 0 || !strings.Contains(out, "FINISHED") {
		t.Fatalf("sluice run -p 4: exit %d\n%s\n%s\nJobManager:\n%s", code, out, stderr, node.PodLog(jmPod, "jobmanager"))
	}
	equalLines(t, readParts(t, e.out), referenceCounts(t, e.input))
	tms, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: session.SelectorFor(id) + ",component=taskmanager"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tms.Items) < 2 {
		t.Errorf("%d TaskManager pods after a -p 4 job at 2 slots each, want 2", len(tms.Items))
	}
	for _, p := range tms.Items {
		var secrets []string
		for _, v := range p.Spec.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
		}
		if slices.Contains(secrets, id+"-keytab") {
			t.Errorf("TaskManager pod %s mounts the keytab Secret although delegation tokens are on: %v", p.Name, secrets)
		}
		if !slices.Contains(secrets, id+"-internal-keystore") {
			t.Errorf("TaskManager pod %s does not mount the internal key store: %v", p.Name, secrets)
		}
		if log := node.PodLog(&p, "taskmanager"); strings.Contains(log, "kerberos login") {
			t.Errorf("TaskManager pod %s logged in to Kerberos itself:\n%s", p.Name, log)
		}
	}
	k8s.WaitFor(t, 60*time.Second, "idle TaskManager pods deleted", func(ctx context.Context) error {
		l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: session.SelectorFor(id) + ",component=taskmanager"})
		if err != nil {
			return err
		}
		if len(l.Items) > 0 {
			return fmt.Errorf("%d TaskManager pods left", len(l.Items))
		}
		return nil
	})

	// The JobManager's ServiceAccount may do its job in its namespace,
	// and nothing with Secrets, here or elsewhere (the real RBAC authorizer).
	other := api.Namespace(t, "other")
	if _, err := c.CoreV1().Secrets(other).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"password": []byte("x")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := api.ServiceAccountClient(t, ns, d.Spec.Template.Spec.ServiceAccountName)
	if _, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("JobManager ServiceAccount cannot list pods in its namespace: %v", err)
	}
	if _, err := sa.CoreV1().ConfigMaps(ns).Get(ctx, session.ConfigMapName(id), metav1.GetOptions{}); err != nil {
		t.Errorf("JobManager ServiceAccount cannot read its ConfigMap: %v", err)
	}
	if _, err := sa.CoordinationV1().Leases(ns).Get(ctx, id+"-jobmanager-leader", metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("JobManager ServiceAccount cannot read its leader-election Lease: %v", err)
	}
	if _, err := sa.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{}); err != nil {
		t.Errorf("JobManager ServiceAccount cannot read its Deployment (owner of its TaskManager pods): %v", err)
	}
	for _, probe := range []struct {
		what string
		err  error
	}{
		{"get Secret db in namespace " + other, func() error { _, err := sa.CoreV1().Secrets(other).Get(ctx, "db", metav1.GetOptions{}); return err }()},
		{"list Secrets in namespace " + other, func() error { _, err := sa.CoreV1().Secrets(other).List(ctx, metav1.ListOptions{}); return err }()},
		{"get its own keytab Secret", func() error {
			_, err := sa.CoreV1().Secrets(ns).Get(ctx, id+"-keytab", metav1.GetOptions{})
			return err
		}()},
		{"list pods in namespace " + other, func() error { _, err := sa.CoreV1().Pods(other).List(ctx, metav1.ListOptions{}); return err }()},
		{"list Secrets in its namespace", func() error { _, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); return err }()},
	} {
		if !apierrors.IsForbidden(probe.err) {
			t.Errorf("JobManager ServiceAccount may %s: err %v, want Forbidden", probe.what, probe.err)
		}
	}

	out, stderr, code = e.sluice(t, "kubernetes-session", "list")
	if code != 0 || !strings.Contains(out, id) {
		t.Errorf("list: exit %d\n%s\n%s", code, out, stderr)
	}

	out, stderr, code = e.sluice(t, "kubernetes-session", "stop")
	if code != 0 {
		t.Fatalf("stop: exit %d\n%s\n%s", code, out, stderr)
	}
	left, err := session.Remaining(ctx, c, ns, id)
	if err != nil || len(left) != 0 {
		t.Errorf("after stop: %v left (%v)", left, err)
	}
	// Nothing unlabelled either: every object in the namespace is the test's own.
	cms, _ := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	for _, x := range cms.Items {
		if x.Name != "kube-root-ca.crt" {
			t.Errorf("ConfigMap %s left after stop", x.Name)
		}
	}
	ss, _ := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	for _, x := range ss.Items {
		t.Errorf("Secret %s left after stop", x.Name)
	}
	if pods, _ := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); len(pods.Items) != 0 {
		t.Errorf("%d pods left after stop", len(pods.Items))
	}
}

func checkOwner(t *testing.T, m metav1.ObjectMeta, uid any) {
	t.Helper()
	if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].Kind != "Deployment" || m.OwnerReferences[0].UID != uid {
		t.Errorf("%s: owner references %+v, want the JobManager Deployment", m.Name, m.OwnerReferences)
	}
}

// applyRBAC creates the Role and RoleBinding of rbac's output.
func applyRBAC(t *testing.T, api *k8s.APIServer, manifest string) {
	t.Helper()
	ctx := context.Background()
	for _, doc := range strings.Split(manifest, "\n---\n") {
		var meta metav1.TypeMeta
		if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rbac output: %v\n%s", err, doc)
		}
		switch meta.Kind {
		case "Role":
			var r rbacv1.Role
			if err := sigsyaml.Unmarshal([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			if _, err := api.Client.RbacV1().Roles(r.Namespace).Create(ctx, &r, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create Role: %v", err)
			}
		case "RoleBinding":
			var rb rbacv1.RoleBinding
			if err := sigsyaml.Unmarshal([]byte(doc), &rb); err != nil {
				t.Fatal(err)
			}
			if _, err := api.Client.RbacV1().RoleBindings(rb.Namespace).Create(ctx, &rb, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create RoleBinding: %v", err)
			}
		default:
			t.Fatalf("rbac printed a %q:\n%s", meta.Kind, doc)
		}
	}
}

func restClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
