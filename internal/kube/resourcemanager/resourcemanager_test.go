package resourcemanager

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-dev/sluice/internal/jobmanager"
)

type fakeView struct {
	mu      sync.Mutex
	demand  jobmanager.SlotDemand
	problem string
}

func (v *fakeView) Slots() jobmanager.SlotDemand {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.demand
}
func (v *fakeView) ReportResourceProblem(p string) { v.mu.Lock(); v.problem = p; v.mu.Unlock() }
func (v *fakeView) RPCAddress() string             { return "demo.jobs:6123" }

func template() *corev1.Pod {
	mode := int32(0o400)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "demo", "component": "taskmanager"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "taskmanager", Image: "sluice:test",
				Command: []string{"sluice", "taskmanager", "--config", "/opt/sluice/conf/config.yaml"},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi"),
				}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "conf", MountPath: "/opt/sluice/conf", ReadOnly: true},
					{Name: "keytab", MountPath: "/opt/sluice/secrets/keytab", ReadOnly: true},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "demo-config"}}}},
				{Name: "keytab", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "demo-keytab", DefaultMode: &mode}}},
			},
		},
	}
}

func newRM(t *testing.T, mod func(*Config)) (*ResourceManager, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "demo", UID: "uid-1"}
	cfg := Config{
		Client: client, Namespace: "jobs", ClusterID: "demo", Template: template(),
		Labels: map[string]string{"app": "demo", "component": "taskmanager"}, SlotsPerTaskManager: 1,
		IdleTimeout: 30 * time.Second, StartupTimeout: 5 * time.Minute, Owner: &owner,
	}
	if mod != nil {
		mod(&cfg)
	}
	rm, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rm, client
}

func listPods(t *testing.T, client *fake.Clientset) []corev1.Pod {
	t.Helper()
	l, err := client.CoreV1().Pods("jobs").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func TestCreatesPodsForMissingSlots(t *testing.T) {
	ctx := context.Background()
	rm, client := newRM(t, func(c *Config) {
		c.SlotsPerTaskManager = 2
		c.JoinTokenSecret = "demo-join-token"
		c.KeytabPath = "/opt/sluice/secrets/keytab/sluice.keytab"
	})
	view := &fakeView{demand: jobmanager.SlotDemand{Missing: 4, TaskManagers: map[string]jobmanager.TaskManagerSlots{}}}
	now := time.Now()
	if err := rm.Reconcile(ctx, view, now); err != nil {
		t.Fatal(err)
	}
	pods := listPods(t, client)
	if len(pods) != 2 {
		t.Fatalf("%d pods for 4 missing slots at 2 slots each, want 2", len(pods))
	}
	for _, p := range pods {
		ct := p.Spec.Containers[0]
		args := strings.Join(ct.Args, " ")
		for _, want := range []string{"-D jobmanager.rpc.address=demo.jobs", "-D jobmanager.rpc.port=6123", "-D taskmanager.resource-id=" + p.Name,
			"-D security.cluster.join-token-file=/opt/sluice/secrets/join-token/join-token"} {
			if !strings.Contains(args, want) {
				t.Errorf("pod %s args %q lack %q", p.Name, args, want)
			}
		}
		if !strings.HasPrefix(p.Name, "demo-taskmanager-") || p.Labels["component"] != "taskmanager" || p.Labels["app"] != "demo" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Name != "demo" {
			t.Errorf("pod %s owners %v", p.Name, p.OwnerReferences)
		}
		if ct.Resources.Limits.Cpu().String() != "500m" || p.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("pod %s resources %v restart %s", p.Name, ct.Resources, p.Spec.RestartPolicy)
		}
		for _, v := range p.Spec.Volumes {
			if s := v.Secret; s != nil && s.SecretName == "demo-keytab" {
				t.Errorf("pod %s mounts the keytab Secret with delegation tokens on", p.Name)
			}
		}
		var tokenVol bool
		for _, v := range p.Spec.Volumes {
			tokenVol = tokenVol || (v.Secret != nil && v.Secret.SecretName == "demo-join-token" && *v.Secret.DefaultMode == 0o400)
		}
		if !tokenVol {
			t.Errorf("pod %s has no join-token Secret volume", p.Name)
		}
	}
	// Pods that are starting cover the demand: no more are created.
	if err := rm.Reconcile(ctx, view, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := len(listPods(t, client)); n != 2 {
		t.Fatalf("%d pods after a second pass, want still 2", n)
	}
}

func TestReportsWhyPodsDoNotStart(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		status corev1.PodStatus
		want   []string
		gone   bool // the pod is deleted (it never will start)
	}{
		{"image pull", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Image: "sluice:nope", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "sluice:nope"`}}}}},
			[]string{"ImagePullBackOff", "sluice:nope", "kubernetes.container.image"}, false},
		{"unschedulable", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient memory."}}},
			[]string{"Unschedulable", "Insufficient memory", "kubernetes.taskmanager.memory"}, false},
		{"exited", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "join token refused"}}}}},
			[]string{"exited with code 1", "join token refused"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm, client := newRM(t, nil)
			view := &fakeView{demand: jobmanager.SlotDemand{Missing: 1, TaskManagers: map[string]jobmanager.TaskManagerSlots{}}}
			now := time.Now()
			if err := rm.Reconcile(ctx, view, now); err != nil {
				t.Fatal(err)
			}
			p := listPods(t, client)[0]
			p.Status = tc.status
			if _, err := client.CoreV1().Pods("jobs").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := rm.Reconcile(ctx, view, now.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			for _, w := range append(tc.want, p.Name) {
				if !strings.Contains(view.problem, w) {
					t.Errorf("problem %q lacks %q", view.problem, w)
				}
			}
			names := []string{}
			for _, q := range listPods(t, client) {
				names = append(names, q.Name)
			}
			if slices.Contains(names, p.Name) == tc.gone {
				t.Errorf("pods %v after the pass: the %s pod deleted = %v, want %v", names, tc.name, !slices.Contains(names, p.Name), tc.gone)
			}
			if tc.gone && len(names) != 0 {
				t.Errorf("a replacement was created at once after a failure (no backoff): %v", names)
			}
		})
	}
}

func TestDeletesIdleTaskManagers(t *testing.T) {
	ctx := context.Background()
	rm, client := newRM(t, nil)
	view := &fakeView{demand: jobmanager.SlotDemand{Missing: 2, TaskManagers: map[string]jobmanager.TaskManagerSlots{}}}
	now := time.Now()
	if err := rm.Reconcile(ctx, view, now); err != nil {
		t.Fatal(err)
	}
	pods := listPods(t, client)
	busy, idle := pods[0].Name, pods[1].Name
	// Both registered; the job runs on one of them only; a TaskManager
	// started by someone else is never touched.
	view.demand = jobmanager.SlotDemand{TaskManagers: map[string]jobmanager.TaskManagerSlots{
		busy: {Total: 1, Free: 0}, idle: {Total: 1, Free: 1}, "standalone-tm": {Total: 4, Free: 4},
	}}
	for _, at := range []time.Duration{time.Second, 20 * time.Second, 30 * time.Second} {
		if err := rm.Reconcile(ctx, view, now.Add(at)); err != nil {
			t.Fatal(err)
		}
		if n := len(listPods(t, client)); n != 2 {
			t.Fatalf("at %s: %d pods; the idle one was deleted before resourcemanager.taskmanager-timeout", at, n)
		}
	}
	if err := rm.Reconcile(ctx, view, now.Add(31*time.Second)); err != nil {
		t.Fatal(err)
	}
	left := listPods(t, client)
	if len(left) != 1 || left[0].Name != busy {
		t.Fatalf("pods after the timeout: %v, want only the busy %s", left, busy)
	}
	if view.problem != "" {
		t.Fatalf("problem %q with every pod running", view.problem)
	}
}
