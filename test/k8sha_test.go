package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/config"
	hakube "github.com/sluice-dev/sluice/internal/ha/kubernetes"
	"github.com/sluice-dev/sluice/internal/kube/session"
	"github.com/sluice-dev/sluice/test/k8s"
)

// nativeCluster is a sluice cluster deployed on the test control plane:
// JobManager pods created here, TaskManager pods created by the
// JobManager's resource manager from the template in <id>-config.
type nativeCluster struct {
	t      *testing.T
	api    *k8s.APIServer
	node   *k8s.Node
	client kubernetes.Interface
	ns, id string
	config string // config.yaml
	dirs   map[string]string
}

const haClusterID = "wc"

func startNative(t *testing.T, extra map[string]string) *nativeCluster {
	t.Helper()
	api := k8s.Start(t)
	node := api.Node(t, sluiceBin)
	ns := api.Namespace(t, "native")
	c := &nativeCluster{t: t, api: api, node: node, client: api.Client, ns: ns, id: haClusterID, dirs: map[string]string{}}
	for _, d := range []string{"checkpoints", "ha", "out"} {
		c.dirs[d] = filepath.Join(t.TempDir(), d)
	}
	ctx := context.Background()
	// The Role sluice kubernetes-session rbac prints (automatic TLS),
	// through the real RBAC authorizer: it must be enough.
	grantJobManager(t, c.client, ns, c.id, session.RBACOptions{AutoTLS: true})
	settings := map[string]string{
		"execution.target":                                            "kubernetes-session",
		"kubernetes.cluster-id":                                       c.id,
		"kubernetes.namespace":                                        ns,
		"taskmanager.numberOfTaskSlots":                               "2",
		"security.ssl.internal.enabled":                               "true",
		"security.ssl.internal.auto":                                  "true",
		"security.cluster.join-token.ttl":                             "1 h",
		"rest.port":                                                   "0",
		"jobmanager.rpc.port":                                         "0",
		"state.checkpoints.dir":                                       c.dirs["checkpoints"],
		"state.checkpoints.num-retained":                              "2",
		"heartbeat.interval":                                          "500 ms",
		"heartbeat.timeout":                                           "4 s",
		"slot.request.timeout":                                        "90 s",
		"restart-strategy.type":                                       "fixed-delay",
		"restart-strategy.fixed-delay.attempts":                       "20",
		"restart-strategy.fixed-delay.delay":                          "500 ms",
		"resourcemanager.taskmanager-timeout":                         "3 s",
		"kubernetes.taskmanager.cpu":                                  "0.1",
		"kubernetes.taskmanager.memory":                               "128mb",
		"high-availability.type":                                      "kubernetes",
		"high-availability.storageDir":                                c.dirs["ha"],
		"high-availability.kubernetes.leader-election.lease-duration": "4 s",
		"high-availability.kubernetes.leader-election.renew-deadline": "3 s",
		"high-availability.kubernetes.leader-election.retry-period":   "500 ms",
	}
	// The pods reach the API server as the namespace's default
	// ServiceAccount (through the real RBAC authorizer) with a kubeconfig:
	// the test node's pods see the API server's Service address
	// (KUBERNETES_SERVICE_HOST), which no proxy serves here.
	settings["kubernetes.config.file"] = api.Kubeconfig(t, api.ServiceAccountToken(t, ns, "default"))
	for k, v := range extra {
		settings[k] = v
	}
	b, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	c.config = string(b) // JSON is YAML
	template := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": c.id, "component": "taskmanager"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "taskmanager", Image: "sluice:test",
				Command:      []string{"sluice", "taskmanager", "--config", "/opt/sluice/conf/config.yaml"},
				VolumeMounts: []corev1.VolumeMount{{Name: "conf", MountPath: "/opt/sluice/conf", ReadOnly: true}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: mustQuantity(t, settings["kubernetes.taskmanager.cpu"]), corev1.ResourceMemory: mustQuantity(t, "128Mi"),
				}},
			}},
			Volumes: []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: c.id + "-config"}}}}},
		},
	}
	tmpl, err := sigsyaml.Marshal(template)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: c.id + "-config"},
		Data:       map[string]string{"config.yaml": c.config, "taskmanager-pod-template.yaml": string(tmpl)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// startJobManager creates a JobManager pod.
func (c *nativeCluster) startJobManager(name string) {
	c.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": c.id, "component": "jobmanager"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "jobmanager", Image: "sluice:test",
				Command:      []string{"sluice", "jobmanager", "--config", "/opt/sluice/conf/config.yaml"},
				VolumeMounts: []corev1.VolumeMount{{Name: "conf", MountPath: "/opt/sluice/conf", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: c.id + "-config"}}}}},
		},
	}
	if _, err := c.client.CoreV1().Pods(c.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *nativeCluster) pod(name string) *corev1.Pod {
	p, err := c.client.CoreV1().Pods(c.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatalf("pod %s: %v", name, err)
	}
	return p
}

func (c *nativeCluster) podLog(name, container string) string {
	p, err := c.client.CoreV1().Pods(c.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("(pod %s: %v)", name, err)
	}
	return c.node.PodLog(p, container)
}

// logs returns every pod's log, for failures.
func (c *nativeCluster) logs() string {
	var b strings.Builder
	entries, _ := os.ReadDir(c.node.Dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), c.ns+"_") {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(c.node.Dir, e.Name(), "*.log"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			s := string(data)
			if len(s) > 6000 {
				s = "..." + s[len(s)-6000:]
			}
			fmt.Fprintf(&b, "==== %s/%s\n%s\n", e.Name(), filepath.Base(f), s)
		}
	}
	return b.String()
}

// leader reads the leader's published addresses.
func (c *nativeCluster) leader(ctx context.Context) (identity, rest string, err error) {
	cm, err := c.client.CoreV1().ConfigMaps(c.ns).Get(ctx, hakube.ClusterConfigMapName(c.id), metav1.GetOptions{})
	if err != nil {
		return "", "", err
	}
	var info struct{ Identity, RPCAddress, RESTAddress string }
	if err := json.Unmarshal([]byte(cm.Data["address"]), &info); err != nil {
		return "", "", fmt.Errorf("address %q: %w", cm.Data["address"], err)
	}
	return info.Identity, info.RESTAddress, nil
}

// jobState reads GET /jobs/{id} from url; "" when it cannot.
func jobStateAt(url, id string) (string, map[string]any) {
	resp, err := http.Get(url + "/jobs/" + id)
	if err != nil {
		return "", nil
	}
	defer resp.Body.Close()
	var j map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&j) != nil {
		return "", nil
	}
	s, _ := j["state"].(string)
	return s, j
}

func (c *nativeCluster) taskManagerPods() []corev1.Pod {
	l, err := c.client.CoreV1().Pods(c.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "component=taskmanager"})
	if err != nil {
		c.t.Fatal(err)
	}
	return l.Items
}

func runClient(t *testing.T, rest string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, append(args, "--jobmanager", "http://"+rest)...)
	cmd.Dir = ".." // examples/ are relative to the repository
	inOwnGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd, syscall.SIGKILL); return nil }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustQuantity(t *testing.T, s string) resource.Quantity {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// waitLeader waits for a leader to publish its REST address and returns
// its identity and address.
func (c *nativeCluster) waitLeader(timeout time.Duration, not string) (identity, rest string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		id, addr, err := c.leader(ctx)
		cancel()
		if err == nil && id != not && addr != "" {
			if resp, err := http.Get("http://" + addr + "/overview"); err == nil {
				resp.Body.Close()
				return id, addr
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no JobManager (other than %q) leads after %s: %v\n%s", not, timeout, err, c.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A -p 4 word count on a cluster without TaskManagers: the JobManager's
// resource manager creates TaskManager pods (2 slots each), they join the
// automatic cluster CA with the join token from its Secret and run the job
// over internal mutual TLS; idle for resourcemanager.taskmanager-timeout,
// they are deleted.
func TestKubernetesTaskManagersOnDemand(t *testing.T) {
	c := startNative(t, nil)
	c.startJobManager("jobmanager-0")
	_, rest := c.waitLeader(90*time.Second, "")
	if n := len(c.taskManagerPods()); n != 0 {
		t.Fatalf("%d TaskManager pods before any job", n)
	}
	input := writeSample(t)
	out := filepath.Join(t.TempDir(), "out")
	stdout := runClient(t, rest, "run", "examples/wordcount.yaml", "-p", "4", "--param", "input="+input, "--param", "output="+out)
	if !strings.Contains(stdout, "FINISHED") {
		t.Fatalf("sluice run: %s\n%s", stdout, c.logs())
	}
	equalLines(t, readParts(t, out), referenceCounts(t, input))
	pods := c.taskManagerPods()
	if len(pods) < 2 {
		t.Fatalf("%d TaskManager pods after a -p 4 job at 2 slots each, want 2", len(pods))
	}
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, c.id+"-taskmanager-") {
			t.Errorf("TaskManager pod %s is not named after the cluster", p.Name)
		}
		var token bool
		for _, v := range p.Spec.Volumes {
			token = token || (v.Secret != nil && v.Secret.SecretName == c.id+"-join-token")
		}
		if !token {
			t.Errorf("pod %s does not mount the join-token Secret", p.Name)
		}
		log := c.node.PodLog(&p, "taskmanager")
		if !strings.Contains(log, "joined the cluster") || !strings.Contains(log, "spiffe://") {
			t.Errorf("TaskManager pod %s did not join the automatic cluster CA:\n%s", p.Name, log)
		}
	}
	jmLog := c.podLog("jobmanager-0", "jobmanager")
	if !strings.Contains(jmLog, "internal TLS on (automatic cluster CA)") {
		t.Errorf("the JobManager does not run internal mutual TLS:\n%s", jmLog)
	}
	// Idle pods go.
	k8s.WaitFor(t, 60*time.Second, "idle TaskManager pods deleted", func(ctx context.Context) error {
		if n := len(c.taskManagerPods()); n != 0 {
			return fmt.Errorf("%d TaskManager pods left", n)
		}
		return nil
	})
	if !strings.Contains(c.podLog("jobmanager-0", "jobmanager"), "deleting an idle TaskManager pod") {
		t.Errorf("the JobManager did not say why it deleted the pods")
	}
}

// A job whose TaskManager pods cannot be placed (they ask for more CPU than
// the node has) says why in its status, with the pod's reason.
func TestKubernetesPodProblemInJobStatus(t *testing.T) {
	c := startNative(t, map[string]string{"kubernetes.taskmanager.cpu": "500"})
	// The template asks for what the settings say.
	c.startJobManager("jobmanager-0")
	_, rest := c.waitLeader(90*time.Second, "")
	input := writeSample(t)
	id := strings.TrimSpace(runClient(t, rest, "run", "--detached", "examples/wordcount.yaml", "-p", "2", "--param", "input="+input, "--param", "output="+filepath.Join(t.TempDir(), "out")))
	k8s.WaitFor(t, 60*time.Second, "the pod's reason in the job's status", func(ctx context.Context) error {
		_, j := jobStateAt("http://"+rest, id)
		b, _ := json.Marshal(j)
		if !strings.Contains(string(b), "Unschedulable") || !strings.Contains(string(b), "kubernetes.taskmanager.cpu") {
			return fmt.Errorf("job status %s", b)
		}
		return nil
	})
}

// Killing the leading JobManager's process: the standby takes the Lease
// within its duration plus a few seconds, recovers the job from its latest
// checkpoint, the TaskManagers move to it, and the job's output is exactly
// once. The job (test/testdata/exactly-once.yaml) writes every record as
// it comes into part files committed at checkpoints, so the check proves
// itself: a recovery from scratch would commit the records before the
// failure twice, a sink without two-phase commit would duplicate those
// after the restored checkpoint, and a lost commit would drop some.
func TestKubernetesLeaderFailover(t *testing.T) {
	const records = 20000
	c := startNative(t, nil)
	lease := c.duration("high-availability.kubernetes.leader-election.lease-duration")
	c.startJobManager("jobmanager-a")
	first, rest := c.waitLeader(90*time.Second, "")
	c.startJobManager("jobmanager-b")
	// A TaskManager revoked under the first leader must stay out under the
	// second: the revocation goes through the CA registry Secret.
	revoked := c.revokedTaskManager(rest)
	out := filepath.Join(t.TempDir(), "out")
	id := strings.TrimSpace(runClient(t, rest, "run", "--detached", "test/testdata/exactly-once.yaml", "-p", "2",
		"--param", "count="+strconv.Itoa(records), "--param", "output="+out))
	var beforeKill int64
	k8s.WaitFor(t, 90*time.Second, "2 completed checkpoints", func(ctx context.Context) error {
		st, err := checkpointStats(rest, id)
		if err != nil {
			return err
		}
		if st.Counts.Completed < 2 || st.Latest.Completed == nil {
			return fmt.Errorf("%d completed", st.Counts.Completed)
		}
		beforeKill = st.Latest.Completed.ID
		return nil
	})
	// Which pod leads: the one whose log says so.
	leaderPod, standby := "jobmanager-a", "jobmanager-b"
	if !strings.Contains(c.podLog(leaderPod, "jobmanager"), "leadership granted") {
		leaderPod, standby = standby, leaderPod
	}
	if strings.Contains(c.podLog(standby, "jobmanager"), "leadership granted") {
		t.Fatalf("both JobManagers say they lead:\n%s", c.logs())
	}
	p := c.pod(leaderPod)
	pidData, err := os.ReadFile(filepath.Join(c.node.Dir, p.Namespace+"_"+p.Name+"_"+string(p.UID), "jobmanager.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The takeover: from the kill until the standby serves as the leader.
	// The Lease expires at most lease-duration after the leader's last
	// renewal; the standby then needs a retry period and its start-up.
	bound := lease + 5*time.Second
	second, rest2 := c.waitLeader(bound+20*time.Second, first)
	took := time.Since(killed)
	t.Logf("the standby %s took over %s after the leader %s was killed (bound: lease-duration %s + 5 s)", second, took.Round(time.Millisecond), first, lease)
	if !strings.Contains(c.podLog(standby, "jobmanager"), "leadership granted") {
		t.Fatalf("the new leader %s is not the standby pod %s", second, standby)
	}
	if took > bound {
		t.Errorf("the standby took over %s after the kill, more than high-availability.kubernetes.leader-election.lease-duration (%s) plus 5 s", took, lease)
	}
	k8s.WaitFor(t, 3*time.Minute, "the recovered job FINISHED", func(ctx context.Context) error {
		s, j := jobStateAt("http://"+rest2, id)
		if s == "FAILED" {
			t.Fatalf("the recovered job failed: %v\n%s", j["failure-cause"], c.logs())
		}
		if s != "FINISHED" {
			return fmt.Errorf("state %q", s)
		}
		return nil
	})
	// It resumed from a checkpoint, not from scratch: the new leader's
	// statistics name the restored checkpoint, at least the one completed
	// before the kill.
	st, err := checkpointStats(rest2, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Latest.Restored == nil || st.Latest.Restored.ID < beforeKill || st.Latest.Restored.ID <= 0 {
		t.Fatalf("the recovered job restored %+v, want a checkpoint >= %d (completed before the kill)\n%s", st.Latest.Restored, beforeKill, c.podLog(standby, "jobmanager"))
	}
	t.Logf("the recovered job restored checkpoint %d (%d was completed when the leader was killed)", st.Latest.Restored.ID, beforeKill)
	if !strings.Contains(c.podLog(standby, "jobmanager"), "job recovered from the high-availability store") {
		t.Errorf("the new leader did not recover the job:\n%s", c.podLog(standby, "jobmanager"))
	}
	// Exactly once: every id once, none missing, none twice.
	seen := make([]int, records)
	lines := committedLines(t, out)
	for _, l := range lines {
		f := strings.Fields(l)
		n, err := strconv.Atoi(f[0])
		if len(f) != 3 || err != nil || n < 0 || n >= records {
			t.Fatalf("unexpected output line %q", l)
		}
		seen[n]++
	}
	var missing, twice []int
	for n, k := range seen {
		switch {
		case k == 0:
			missing = append(missing, n)
		case k > 1:
			twice = append(twice, n)
		}
	}
	if len(missing) > 0 || len(twice) > 0 || len(lines) != records {
		t.Fatalf("output after a JobManager failover is not exactly once: %d lines for %d records; %d ids missing (first %v), %d ids more than once (first %v)\n%s",
			len(lines), records, len(missing), missing[:min(len(missing), 10)], len(twice), twice[:min(len(twice), 10)], c.logs())
	}
	// The ended job left the high-availability store, its result recorded
	// (so no later leader runs it again).
	k8s.WaitFor(t, 30*time.Second, "the job's result recorded and the job removed from the HA ConfigMaps", func(ctx context.Context) error {
		cm, err := c.client.CoreV1().ConfigMaps(c.ns).Get(ctx, hakube.ClusterConfigMapName(c.id), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := cm.Data["jobGraph-"+id]; ok {
			return fmt.Errorf("jobGraph-%s still stored", id)
		}
		if r := cm.Data["jobResult-"+id]; !strings.Contains(r, `"state":"FINISHED"`) {
			return fmt.Errorf("jobResult-%s = %q", id, r)
		}
		return nil
	})
	l, err := c.client.CoordinationV1().Leases(c.ns).Get(context.Background(), hakube.LeaseName(c.id), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != second {
		t.Errorf("the Lease names %v, want the new leader %s", l.Spec.HolderIdentity, second)
	}
	// The TaskManager revoked under the first leader, which follows the
	// leader and keeps trying to register, is refused by the second.
	k8s.WaitFor(t, 30*time.Second, "the new leader refuses the revoked TaskManager", func(ctx context.Context) error {
		log := c.podLog(standby, "jobmanager")
		if !strings.Contains(log, "cluster CA registry taken over from the previous leader") || !strings.Contains(log, "was revoked") {
			return fmt.Errorf("no refusal of a revoked certificate in the new leader's log yet")
		}
		return nil
	})
	if tms := getBody(t, "http://"+rest2+"/taskmanagers"); strings.Contains(tms, revoked.name) {
		t.Fatalf("the revoked TaskManager registered with the new leader: %s\n%s", tms, revoked.Log())
	}
	// The automatic CA's registry went from leader to leader through its
	// Secret, which the JobManager's Role (real RBAC) lets it write.
	sec, err := c.client.CoreV1().Secrets(c.ns).Get(context.Background(), hakube.CARegistrySecretName(c.id), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the cluster CA registry Secret: %v", err)
	}
	if len(sec.Data["registry.json"]) == 0 || !strings.Contains(sec.Annotations[hakube.LeaderAnnotation], second) {
		t.Errorf("the cluster CA registry Secret: %d bytes, leader annotation %q (want %s)", len(sec.Data["registry.json"]), sec.Annotations[hakube.LeaderAnnotation], second)
	}
}

// revokedTaskManager starts a TaskManager process outside the cluster's
// pods (same configuration, the join token from its Secret, following the
// high-availability leader), waits until it registered with the leader at
// rest, and revokes it there: it is refused from then on and keeps
// retrying (taskmanager.registration.timeout).
func (c *nativeCluster) revokedTaskManager(rest string) *proc {
	c.t.Helper()
	const tmID = "tm-revoked"
	ctx := context.Background()
	sec, err := c.client.CoreV1().Secrets(c.ns).Get(ctx, c.id+"-join-token", metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	conf := filepath.Join(c.t.TempDir(), "config.yaml")
	if err := os.WriteFile(conf, []byte(c.config), 0o600); err != nil {
		c.t.Fatal(err)
	}
	p := startProc(c.t, tmID, "taskmanager", "--config", conf, "--id", tmID, "--join-token", strings.TrimSpace(string(sec.Data["join-token"])),
		"-D", "taskmanager.registration.timeout=10 min")
	k8s.WaitFor(c.t, 60*time.Second, tmID+" registered", func(ctx context.Context) error {
		if !strings.Contains(getBody(c.t, "http://"+rest+"/taskmanagers"), tmID) {
			return fmt.Errorf("not registered")
		}
		return nil
	})
	runClient(c.t, rest, "security", "revoke-taskmanager", tmID)
	k8s.WaitFor(c.t, 30*time.Second, tmID+" dropped", func(ctx context.Context) error {
		if strings.Contains(getBody(c.t, "http://"+rest+"/taskmanagers"), tmID) {
			return fmt.Errorf("still registered")
		}
		return nil
	})
	return p
}

// getBody is GET url's body ("" when it cannot be read).
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// checkpointStatistics is the part of GET /jobs/{id}/checkpoints the
// tests read.
type checkpointStatistics struct {
	Counts struct{ Completed int }
	Latest struct {
		Completed *struct{ ID int64 }
		Restored  *struct{ ID int64 }
	}
}

func checkpointStats(rest, id string) (checkpointStatistics, error) {
	var st checkpointStatistics
	resp, err := http.Get("http://" + rest + "/jobs/" + id + "/checkpoints")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /jobs/%s/checkpoints: %s", id, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// duration reads a duration key of the cluster's configuration.
func (c *nativeCluster) duration(key string) time.Duration {
	c.t.Helper()
	var settings map[string]string
	if err := json.Unmarshal([]byte(c.config), &settings); err != nil {
		c.t.Fatal(err)
	}
	cfg, err := config.Load("", []string{key + "=" + settings[key]})
	if err != nil {
		c.t.Fatal(err)
	}
	return cfg.Duration(key)
}

// sluice run --target kubernetes-application deploys a cluster that runs
// the job (its TaskManagers on pods the JobManager creates, over internal
// mutual TLS) and removes itself once the job has finished.
func TestKubernetesApplicationMode(t *testing.T) {
	api := k8s.Start(t)
	api.Node(t, sluiceBin)
	ns := api.Namespace(t, "app")
	ctx := context.Background()
	grantJobManager(t, api.Client, ns, "app", session.RBACOptions{AutoTLS: true, Application: true})
	input := writeSample(t)
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"run", "--target", "kubernetes-application", "examples/wordcount.yaml", "-p", "4",
		"--param", "input=" + input, "--param", "output=" + out}
	for _, d := range []string{
		"kubernetes.config.file=" + api.AdminKubeconfig, "kubernetes.namespace=" + ns, "kubernetes.cluster-id=app",
		"kubernetes.jobmanager.cpu=0.2", "kubernetes.jobmanager.memory=256mb",
		"kubernetes.taskmanager.cpu=0.2", "kubernetes.taskmanager.memory=256mb", "taskmanager.numberOfTaskSlots=2",
		"security.ssl.internal.enabled=true", "security.ssl.internal.auto=true",
		// Pods share the host's network on the test node, and no DNS serves Services.
		"jobmanager.rpc.address=127.0.0.1", "rest.port=" + strconv.Itoa(freePort(t)),
		"jobmanager.rpc.port=" + strconv.Itoa(freePort(t)), "blob.server.port=" + strconv.Itoa(freePort(t)),
		"resourcemanager.taskmanager-timeout=2 s",
	} {
		args = append(args, "-D", d)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, sluiceBin, args...)
	cmd.Dir = ".."
	inOwnGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd, syscall.SIGKILL); return nil }
	stdout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sluice run --target kubernetes-application: %v\n%s", err, stdout)
	}
	if !strings.Contains(string(stdout), "Application cluster app deployed") {
		t.Fatalf("output: %s", stdout)
	}
	node := api.Node(t, sluiceBin)
	// The pods' logs, kept as they grow: the node removes a deleted pod's.
	seen := map[string]string{}
	capture := func() {
		files, _ := filepath.Glob(filepath.Join(node.Dir, ns+"_*", "*.log"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && len(b) >= len(seen[f]) {
				seen[f] = string(b)
			}
		}
	}
	k8s.WaitFor(t, 3*time.Minute, "the application cluster removed after its job", func(ctx context.Context) error {
		capture()
		d, err := api.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
		if err != nil {
			return err
		}
		p, err := api.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=app"})
		if err != nil {
			return err
		}
		if len(d.Items)+len(p.Items) > 0 {
			return fmt.Errorf("%d deployments, %d pods left", len(d.Items), len(p.Items))
		}
		return nil
	})
	var all strings.Builder
	for f, l := range seen {
		fmt.Fprintf(&all, "==== %s\n%s\n", f, l)
	}
	logs := all.String()
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the application's job wrote nothing: %v\n%s", err, logs)
	}
	equalLines(t, readParts(t, out), referenceCounts(t, input))
	// The cluster removed itself: only the JobManager deletes its Deployment.
	for _, want := range []string{"TaskManager pod created for waiting jobs", "joined the cluster", "internal TLS on (automatic cluster CA)"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the pods' logs lack %q", want)
		}
	}
}

// grantJobManager creates the Role and RoleBinding sluice kubernetes-session
// rbac prints, for the namespace's default ServiceAccount.
func grantJobManager(t *testing.T, client kubernetes.Interface, ns, id string, o session.RBACOptions) {
	t.Helper()
	ctx := context.Background()
	role := session.JobManagerRole(ns, id, o)
	if _, err := client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, session.JobManagerRoleBinding(ns, id, "default"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
