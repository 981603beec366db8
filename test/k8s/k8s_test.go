package k8s

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// The node agent runs a pod's command with its Secret and ConfigMap mounted
// read-only at their mountPaths with the pod's modes, and reports the exit
// code; a Deployment gets its pod from the real controllers, and the garbage
// collector removes what the Deployment owns when it is deleted.
func TestNodeRunsPodsWithVolumes(t *testing.T) {
	api := Shared(t)
	node := api.Node(t, "/bin/false") // no sluice here: the pods run /bin/sh
	ns := api.Namespace(t, "harness")
	ctx := context.Background()
	c := api.Client.CoreV1()
	if _, err := c.Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"key": []byte("s3cret")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"config.yaml": "a: b\n", "plain": "plain"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mode := int32(0o400)
	// Exit 0 only if every check holds; each failing check exits with its own code.
	script := strings.Join([]string{
		`test "$(cat /opt/sluice-harness/secret/key)" = s3cret || exit 11`,
		`test "$(stat -c %a /opt/sluice-harness/secret/key)" = 400 || exit 12`,
		`test "$(cat /opt/sluice-harness/conf/config.yaml)" = "a: b" || exit 13`,
		`touch /opt/sluice-harness/secret/new 2>/dev/null && exit 14`,
		`test -s /var/run/secrets/kubernetes.io/serviceaccount/token || exit 15`,
		`test "$MY_KEY" = s3cret || exit 16`,
		`test "$POD_IP" = 127.0.0.1 || exit 17`,
		`test "$FROM_CM" = plain || exit 18`,
		`exit 0`,
	}, "\n")
	pod := func(name, script string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name: "main", Image: "ignored", Command: []string{"/bin/sh", "-c", script},
					Env: []corev1.EnvVar{{Name: "MY_KEY", ValueFrom: &corev1.EnvVarSource{
						SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "key"}}},
						{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
						{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "plain"}}},
					},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "secret", MountPath: "/opt/sluice-harness/secret", ReadOnly: true},
						{Name: "conf", MountPath: "/opt/sluice-harness/conf", ReadOnly: true},
					},
				}},
				Volumes: []corev1.Volume{
					{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: &mode}}},
					{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
				},
			},
		}
	}
	for _, tc := range []struct {
		name     string
		script   string
		phase    corev1.PodPhase
		exitCode int32
	}{
		{"checks", script, corev1.PodSucceeded, 0},
		{"fails", "exit 7", corev1.PodFailed, 7},
	} {
		p, err := c.Pods(ns).Create(ctx, pod(tc.name, tc.script), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var last *corev1.Pod
		WaitFor(t, 60*time.Second, "pod "+tc.name+" finished", func(ctx context.Context) error {
			last, err = c.Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if last.Status.Phase != corev1.PodSucceeded && last.Status.Phase != corev1.PodFailed {
				return fmt.Errorf("phase %s", last.Status.Phase)
			}
			return nil
		})
		if last.Status.Phase != tc.phase {
			t.Errorf("pod %s: phase %s, want %s; status %+v\nlog: %s", tc.name, last.Status.Phase, tc.phase, last.Status, node.PodLog(last, "main"))
		}
		if cs := last.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != tc.exitCode {
			t.Errorf("pod %s: container statuses %+v, want exit code %d\nlog: %s", tc.name, cs, tc.exitCode, node.PodLog(last, "main"))
		}
	}

	// A Deployment's pod comes from the deployment and replicaset controllers
	// and runs on the node; deleting the Deployment lets the garbage
	// collector delete its ReplicaSet and pod.
	one := int32(1)
	labels := map[string]string{"app": "sleeper"}
	d, err := api.Client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "main", Image: "ignored", Command: []string{"/bin/sh", "-c", "exec sleep 600"},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 60*time.Second, "the Deployment's pod Running", func(ctx context.Context) error {
		pods, err := c.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=sleeper"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 || pods.Items[0].Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pods %d, want 1 Running", len(pods.Items))
		}
		return nil
	})
	bg := metav1.DeletePropagationBackground
	if err := api.Client.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 60*time.Second, "the garbage collector deleting the Deployment's pods", func(ctx context.Context) error {
		pods, err := c.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=sleeper"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 0 {
			return fmt.Errorf("%d pods left", len(pods.Items))
		}
		return nil
	})
}

// A pod that asks for more than the node has stays Pending, Unschedulable,
// as with kube-scheduler.
func TestBinderUnschedulable(t *testing.T) {
	api := Shared(t)
	api.Node(t, "/bin/false")
	ns := api.Namespace(t, "binder")
	ctx := context.Background()
	p, err := api.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "huge"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: "ignored", Command: []string{"/bin/true"},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity(t, "1000")}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, "pod marked Unschedulable", func(ctx context.Context) error {
		got, err := api.Client.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonUnschedulable && strings.Contains(c.Message, "Insufficient cpu") {
				if got.Spec.NodeName != "" {
					return fmt.Errorf("bound to %s", got.Spec.NodeName)
				}
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", got.Status.Conditions)
	})
}

func mustQuantity(t testing.TB, s string) resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Deleting a test's namespace deletes its pods (the namespace controller
// runs), so a failed test leaves no process running on the node.
func TestNamespaceCleanup(t *testing.T) {
	api := Shared(t)
	api.Node(t, "/bin/false")
	ctx := context.Background()
	var ns string
	t.Run("inner", func(t *testing.T) {
		ns = api.Namespace(t, "cleanup")
		if _, err := api.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "sleeper"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "main", Image: "ignored", Command: []string{"/bin/sh", "-c", "exec sleep 600"},
			}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		WaitFor(t, 30*time.Second, "pod Running", func(ctx context.Context) error {
			p, err := api.Client.CoreV1().Pods(ns).Get(ctx, "sleeper", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("phase %s", p.Status.Phase)
			}
			return nil
		})
	})
	WaitFor(t, 60*time.Second, "namespace "+ns+" gone", func(ctx context.Context) error {
		_, err := api.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("still there")
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	})
}
