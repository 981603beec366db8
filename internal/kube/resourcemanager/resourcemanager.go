// Package resourcemanager is the JobManager's Kubernetes resource manager
// (Flink's active resource manager in native Kubernetes mode): it creates
// TaskManager pods when jobs wait for slots, deletes the ones that stay idle
// for resourcemanager.taskmanager-timeout, and reports why a pod does not
// start (an image that cannot be pulled, a pod no node can take) on the
// jobs that wait for it.
package resourcemanager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"path"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/internal/jobmanager"
)

// Label values of the pods the resource manager creates.
const (
	LabelComponent = "component"
	ComponentTM    = "taskmanager"
	// JoinTokenDir is where the join-token Secret is mounted in a pod.
	JoinTokenDir = "/opt/sluice/secrets/join-token"
	// JoinTokenKey is the join token's key in its Secret.
	JoinTokenKey = "join-token"
)

// Config configures the resource manager.
type Config struct {
	Client    kubernetes.Interface
	Namespace string
	ClusterID string
	// Template is the TaskManager pod every pod is made from (image,
	// resources, config and Secret volumes, env); its first container runs
	// the TaskManager. The client builds it (kubernetes-session start).
	Template *corev1.Pod
	// Labels select the pods this resource manager owns.
	Labels map[string]string
	// SlotsPerTaskManager is taskmanager.numberOfTaskSlots.
	SlotsPerTaskManager int
	// IdleTimeout is resourcemanager.taskmanager-timeout.
	IdleTimeout time.Duration
	// StartupTimeout is how long a pod may take to register.
	StartupTimeout time.Duration
	// JoinTokenSecret names the Secret with the automatic-mode join
	// token ("" when internal TLS uses mounted keystores).
	JoinTokenSecret string
	// KeytabPath is security.kerberos.login.keytab when delegation tokens
	// are on: no TaskManager pod gets a volume mounted over it.
	KeytabPath string
	// Owner makes the pods go with the JobManager Deployment.
	Owner *metav1.OwnerReference
	// Env is added to the TaskManager container (leader retrieval).
	Env    []corev1.EnvVar
	Logger *slog.Logger
	// Period is how often the demand is checked; 0: 1 s.
	Period time.Duration

	// refreshToken re-issues the join token in its Secret every
	// refreshEvery, before it expires (FromConfig sets them).
	refreshToken func(context.Context) error
	refreshEvery time.Duration
}

// ResourceManager implements jobmanager.ResourceManager on Kubernetes.
type ResourceManager struct {
	cfg Config
	log *slog.Logger
	// Owned by Run's goroutine.
	idleSince map[string]time.Time
	// seen is when each pod was first seen (or created) here: its age
	// when the API's creation time is missing or ahead of this clock.
	seen      map[string]time.Time
	backoff   time.Duration
	nextStart time.Time
}

var _ jobmanager.ResourceManager = (*ResourceManager)(nil)

// New checks cfg and returns a resource manager.
func New(cfg Config) (*ResourceManager, error) {
	if cfg.Template == nil || len(cfg.Template.Spec.Containers) == 0 {
		return nil, fmt.Errorf("resource manager: no TaskManager pod template (its container runs `sluice taskmanager`)")
	}
	if cfg.SlotsPerTaskManager < 1 {
		cfg.SlotsPerTaskManager = 1
	}
	if cfg.Period <= 0 {
		cfg.Period = time.Second
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Labels) == 0 {
		cfg.Labels = map[string]string{"app": cfg.ClusterID, LabelComponent: ComponentTM}
	}
	return &ResourceManager{cfg: cfg, log: cfg.Logger.With("component", "resourcemanager"), idleSince: map[string]time.Time{}, seen: map[string]time.Time{}}, nil
}

// Run reconciles the TaskManager pods with the slot demand until ctx ends.
func (rm *ResourceManager) Run(ctx context.Context, view jobmanager.SlotView) {
	t := time.NewTicker(rm.cfg.Period)
	defer t.Stop()
	tokenAt := time.Now()
	for {
		if f := rm.cfg.refreshToken; f != nil && rm.cfg.refreshEvery > 0 && time.Since(tokenAt) >= rm.cfg.refreshEvery {
			if err := f(ctx); err != nil {
				rm.log.Warn("resource manager: cannot renew the join token of the TaskManager pods; retrying", "err", err)
			} else {
				tokenAt = time.Now()
			}
		}
		if err := rm.Reconcile(ctx, view, time.Now()); err != nil && ctx.Err() == nil {
			rm.log.Warn("resource manager: reconcile failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Reconcile makes one pass: report why pods do not start, replace failed
// ones, create pods for missing slots, delete idle ones.
func (rm *ResourceManager) Reconcile(ctx context.Context, view jobmanager.SlotView, now time.Time) error {
	c := rm.cfg
	pods, err := c.Client.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(c.Labels).String()})
	if err != nil {
		return fmt.Errorf("list the TaskManager pods in %s: %w", c.Namespace, err)
	}
	d := view.Slots()
	sort.Slice(pods.Items, func(a, b int) bool { return pods.Items[a].Name < pods.Items[b].Name })
	ours := map[string]bool{}
	for _, p := range pods.Items {
		ours[p.Name] = true
	}
	var problems []string
	starting := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if _, registered := d.TaskManagers[p.Name]; registered {
			continue
		}
		problem, failed := podProblem(p)
		if _, ok := rm.seen[p.Name]; !ok {
			rm.seen[p.Name] = now
		}
		started := rm.seen[p.Name]
		if ct := p.CreationTimestamp.Time; !ct.IsZero() && ct.Before(started) {
			started = ct
		}
		age := now.Sub(started)
		if !failed && age > c.StartupTimeout {
			failed = true
			if problem == "" {
				problem = fmt.Sprintf("did not register within %s (resourcemanager.taskmanager-startup-timeout)", c.StartupTimeout)
			}
		}
		if problem != "" {
			problems = append(problems, fmt.Sprintf("TaskManager pod %s: %s", p.Name, problem))
		}
		if failed {
			rm.log.Warn("deleting a TaskManager pod that did not start", "pod", p.Name, "problem", problem)
			rm.deletePod(ctx, p.Name)
			rm.failed(now)
			continue
		}
		starting++
	}
	if len(problems) > 0 {
		view.ReportResourceProblem(strings.Join(problems, "; "))
	} else if starting == 0 {
		view.ReportResourceProblem("")
	}
	// Create pods for the slots no running or starting pod will offer.
	if missing := d.Missing - starting*c.SlotsPerTaskManager; missing > 0 && !now.Before(rm.nextStart) {
		n := (missing + c.SlotsPerTaskManager - 1) / c.SlotsPerTaskManager
		for range n {
			name, err := rm.createPod(ctx, view.RPCAddress())
			if err != nil {
				view.ReportResourceProblem(fmt.Sprintf("cannot create a TaskManager pod: %v", err))
				rm.failed(now)
				return err
			}
			rm.seen[name], ours[name] = now, true
			rm.log.Info("TaskManager pod created for waiting jobs", "pod", name, "missing-slots", d.Missing)
		}
	}
	// Delete our TaskManagers idle for longer than the timeout, while no
	// job waits for slots.
	for id, s := range d.TaskManagers {
		if !ours[id] || s.Free < s.Total || d.Missing > 0 {
			delete(rm.idleSince, id)
			continue
		}
		since, ok := rm.idleSince[id]
		if !ok {
			rm.idleSince[id] = now
			continue
		}
		if now.Sub(since) >= c.IdleTimeout {
			rm.log.Info("deleting an idle TaskManager pod", "pod", id, "idle", now.Sub(since).Round(time.Second), "resourcemanager.taskmanager-timeout", c.IdleTimeout)
			rm.deletePod(ctx, id)
			delete(rm.idleSince, id)
		}
	}
	for id := range rm.idleSince {
		if _, ok := d.TaskManagers[id]; !ok {
			delete(rm.idleSince, id)
		}
	}
	for name := range rm.seen {
		if !ours[name] {
			delete(rm.seen, name)
		}
	}
	return nil
}

// failed backs the creation of pods off after a pod failed to start, so a
// broken image is not a tight loop of pods.
func (rm *ResourceManager) failed(now time.Time) {
	rm.backoff = min(max(rm.backoff*2, time.Second), time.Minute)
	rm.nextStart = now.Add(rm.backoff)
}

func (rm *ResourceManager) deletePod(ctx context.Context, name string) {
	err := rm.cfg.Client.CoreV1().Pods(rm.cfg.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		rm.log.Warn("cannot delete a TaskManager pod", "pod", name, "err", err)
	}
}

// podProblem says why a pod is not (yet) a running TaskManager, from its
// status; failed means it never will be.
func podProblem(p *corev1.Pod) (problem string, failed bool) {
	if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil {
				return fmt.Sprintf("exited with code %d (%s) %s", t.ExitCode, t.Reason, strings.TrimSpace(t.Message)), true
			}
		}
		return fmt.Sprintf("%s: %s %s", p.Status.Phase, p.Status.Reason, p.Status.Message), true
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff":
				return fmt.Sprintf("%s: %s (image %s; check kubernetes.container.image and the pull secrets)", w.Reason, w.Message, cs.Image), false
			}
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("Pending, not scheduled: %s: %s (lower kubernetes.taskmanager.cpu / kubernetes.taskmanager.memory or add nodes)", c.Reason, c.Message), false
		}
	}
	return "", false
}

// createPod creates one TaskManager pod from the template.
func (rm *ResourceManager) createPod(ctx context.Context, jmRPC string) (string, error) {
	c := rm.cfg
	pod := Pod(c, podName(c.ClusterID), jmRPC)
	created, err := c.Client.CoreV1().Pods(c.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create pod %s in %s (the JobManager's service account needs create on pods: `sluice kubernetes-session rbac`): %w", pod.Name, c.Namespace, err)
	}
	return created.Name, nil
}

func podName(clusterID string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return clusterID + "-taskmanager-" + hex.EncodeToString(b)
}

// Pod builds the TaskManager pod name from the template: the TaskManager
// registers under the pod's name at the JobManager at jmRPC, joins with the
// join-token Secret in automatic mode, and gets no volume over the keytab
// when delegation tokens are on.
func Pod(c Config, name, jmRPC string) *corev1.Pod {
	pod := c.Template.DeepCopy()
	pod.TypeMeta = metav1.TypeMeta{}
	pod.Name, pod.Namespace, pod.GenerateName = name, c.Namespace, ""
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	for k, v := range c.Labels {
		pod.Labels[k] = v
	}
	if c.Owner != nil {
		pod.OwnerReferences = []metav1.OwnerReference{*c.Owner}
	}
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	ct := &pod.Spec.Containers[0]
	host, port, err := net.SplitHostPort(jmRPC)
	if err == nil {
		ct.Args = append(ct.Args, "-D", "jobmanager.rpc.address="+host, "-D", "jobmanager.rpc.port="+port)
	}
	ct.Args = append(ct.Args, "-D", "taskmanager.resource-id="+name)
	ct.Env = append(ct.Env, c.Env...)
	if c.JoinTokenSecret != "" {
		mode := int32(0o400)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "sluice-join-token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: c.JoinTokenSecret, DefaultMode: &mode, Items: []corev1.KeyToPath{{Key: JoinTokenKey, Path: JoinTokenKey, Mode: &mode}},
		}}})
		ct.VolumeMounts = append(ct.VolumeMounts, corev1.VolumeMount{Name: "sluice-join-token", MountPath: JoinTokenDir, ReadOnly: true})
		ct.Args = append(ct.Args, "-D", "security.cluster.join-token-file="+path.Join(JoinTokenDir, JoinTokenKey))
	}
	if c.KeytabPath != "" {
		dropKeytab(pod, c.KeytabPath)
	}
	return pod
}

// dropKeytab removes every volume mounted where the keytab would be: with
// delegation tokens on, TaskManagers get tokens, never the keytab.
func dropKeytab(pod *corev1.Pod, keytab string) {
	drop := map[string]bool{}
	for i := range pod.Spec.Containers {
		ct := &pod.Spec.Containers[i]
		kept := ct.VolumeMounts[:0]
		for _, m := range ct.VolumeMounts {
			if m.MountPath == keytab || strings.HasPrefix(keytab, strings.TrimSuffix(m.MountPath, "/")+"/") {
				drop[m.Name] = true
				continue
			}
			kept = append(kept, m)
		}
		ct.VolumeMounts = kept
	}
	vols := pod.Spec.Volumes[:0]
	for _, v := range pod.Spec.Volumes {
		if !drop[v.Name] {
			vols = append(vols, v)
		}
	}
	pod.Spec.Volumes = vols
}
