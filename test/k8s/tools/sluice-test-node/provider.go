package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// provider runs pods as local processes (see the package comment).
type provider struct {
	client    kubernetes.Interface
	sluiceBin string
	root      string
	apiHost   string
	apiPort   string
	apiCA     []byte
	nodeName  string
	log       *slog.Logger

	mu     sync.Mutex
	pods   map[string]*podState // by namespace/name
	notify func(*corev1.Pod)
}

var (
	_ nodeutil.Provider = (*provider)(nil)
	_ interface {
		NotifyPods(context.Context, func(*corev1.Pod))
	} = (*provider)(nil)
)

// podState is one pod the provider runs. Its pod is replaced, never
// mutated, so a copy handed out stays valid.
type podState struct {
	pod      *corev1.Pod
	dir      string
	procs    map[string]*exec.Cmd // running containers by name
	exited   chan struct{}        // closed when every container has exited
	deleted  bool
	exitOnce sync.Once
}

func podKey(namespace, name string) string { return namespace + "/" + name }

// NotifyPods registers the callback that pushes status changes to the API.
func (p *provider) NotifyPods(_ context.Context, f func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notify = f
}

// CreatePod materializes the pod's volumes and starts its containers; a pod
// that cannot start is reported Failed with the reason.
func (p *provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	pod = pod.DeepCopy()
	key := podKey(pod.Namespace, pod.Name)
	dir := filepath.Join(p.root, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
	st := &podState{pod: pod, dir: dir, procs: map[string]*exec.Cmd{}, exited: make(chan struct{})}
	p.mu.Lock()
	if _, ok := p.pods[key]; ok {
		p.mu.Unlock()
		return nil
	}
	p.pods[key] = st
	p.mu.Unlock()

	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase:     corev1.PodPending,
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP:     "127.0.0.1",
		PodIPs:    []corev1.PodIP{{IP: "127.0.0.1"}},
		StartTime: &now,
	}
	p.update(st, pod.DeepCopy())
	go p.start(st, pod.DeepCopy()) // owned by the provider: ends once the pod runs, fails or is deleted
	return nil
}

// start sets the pod up as the kubelet does: its volumes, retried while a
// Secret or ConfigMap they need does not exist yet (the pod stays Pending,
// with the reason in its status), then its init containers and containers.
func (p *provider) start(st *podState, pod *corev1.Pod) {
	ctx := context.Background()
	dir := st.dir
	key := podKey(pod.Namespace, pod.Name)
	var mounts map[string]volumeDir
	lastMsg := ""
	for {
		if p.isDeleted(st) {
			p.closeExited(st)
			return
		}
		var err error
		mounts, err = p.materializeVolumes(ctx, pod, dir)
		if err == nil {
			err = p.resolveAllEnv(ctx, pod)
		}
		if err == nil {
			break
		}
		if !apierrors.IsNotFound(err) {
			p.fail(st, "VolumeSetupFailed", err.Error())
			return
		}
		waiting := pod.DeepCopy()
		waiting.Status.Reason, waiting.Status.Message = "ContainerCreating", err.Error()
		if lastMsg != err.Error() {
			lastMsg = err.Error()
			p.update(st, waiting)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, c := range pod.Spec.InitContainers {
		code, err := p.runInit(ctx, st, c, mounts)
		if err != nil || code != 0 {
			msg := fmt.Sprintf("init container %s exited with %d", c.Name, code)
			if err != nil {
				msg = err.Error()
			}
			p.fail(st, "InitContainerFailed", msg)
			return
		}
	}
	now := metav1.Now()
	var statuses []corev1.ContainerStatus
	p.mu.Lock() // no DeletePod between the check and the starts
	if st.deleted {
		p.mu.Unlock()
		p.closeExited(st)
		return
	}
	for _, c := range pod.Spec.Containers {
		cmd, err := p.command(st, c, mounts)
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			for _, started := range st.procs {
				_ = started.Process.Kill()
				_ = started.Wait()
			}
			st.procs = map[string]*exec.Cmd{}
			p.mu.Unlock()
			p.fail(st, "ContainerCannotRun", fmt.Sprintf("container %s: %v", c.Name, err))
			return
		}
		_ = os.WriteFile(filepath.Join(dir, c.Name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
		st.procs[c.Name] = cmd
		statuses = append(statuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: true, Started: ptr(true),
			ContainerID: "sluice-test-node://" + strconv.Itoa(cmd.Process.Pid),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	procs := make(map[string]*exec.Cmd, len(st.procs))
	for k, v := range st.procs {
		procs[k] = v
	}
	p.mu.Unlock()
	running := pod.DeepCopy()
	running.Status.Phase = corev1.PodRunning
	running.Status.Reason, running.Status.Message = "", ""
	running.Status.ContainerStatuses = statuses
	running.Status.Conditions = conditions(corev1.ConditionTrue)
	p.update(st, running)
	p.log.Info("pod running", "pod", key, "dir", dir)

	// One waiter per container; the last one to finish settles the pod.
	var wg sync.WaitGroup
	for name, cmd := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			p.containerExited(st, name, exitCode(cmd, err))
		}()
	}
	wg.Wait()
	p.closeExited(st)
}

// resolveAllEnv replaces every container's env and envFrom with the
// resolved values (see resolveEnv).
func (p *provider) resolveAllEnv(ctx context.Context, pod *corev1.Pod) error {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			env, err := p.resolveEnv(ctx, pod, list[i])
			if err != nil {
				return fmt.Errorf("container %s: %w", list[i].Name, err)
			}
			list[i].Env, list[i].EnvFrom = env, nil
		}
	}
	return nil
}

func (p *provider) isDeleted(st *podState) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return st.deleted
}

// closeExited marks the pod as having no process left (once).
func (p *provider) closeExited(st *podState) {
	st.exitOnce.Do(func() { close(st.exited) })
}

func ptr[T any](v T) *T { return &v }

func conditions(s corev1.ConditionStatus) []corev1.PodCondition {
	now := metav1.Now()
	var out []corev1.PodCondition
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		st := s
		if t == corev1.PodScheduled || t == corev1.PodInitialized {
			st = corev1.ConditionTrue
		}
		out = append(out, corev1.PodCondition{Type: t, Status: st, LastTransitionTime: now})
	}
	return out
}

func exitCode(cmd *exec.Cmd, err error) int32 {
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int32(ws.Signal())
		}
		return int32(cmd.ProcessState.ExitCode())
	}
	if err != nil {
		return 128
	}
	return 0
}

// containerExited records a container's exit; when none is left running
// the pod is Succeeded (all exited 0) or Failed.
func (p *provider) containerExited(st *podState, name string, code int32) {
	p.mu.Lock()
	pod := st.pod.DeepCopy()
	delete(st.procs, name)
	left := len(st.procs)
	p.mu.Unlock()
	now := metav1.Now()
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	failed := false
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		if cs.Name == name {
			var started metav1.Time
			if cs.State.Running != nil {
				started = cs.State.Running.StartedAt
			}
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: now, ContainerID: cs.ContainerID,
			}}
			cs.Ready = false
			cs.Started = ptr(false)
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			failed = true
		}
	}
	pod.Status.Conditions = conditions(corev1.ConditionFalse)
	if left == 0 {
		pod.Status.Phase = corev1.PodSucceeded
		if failed {
			pod.Status.Phase = corev1.PodFailed
		}
	}
	p.log.Info("container exited", "pod", podKey(pod.Namespace, pod.Name), "container", name, "exit_code", code)
	p.update(st, pod)
}

// fail reports a pod that could not start.
func (p *provider) fail(st *podState, reason, msg string) {
	pod := st.pod.DeepCopy()
	pod.Status.Phase = corev1.PodFailed
	pod.Status.Reason = reason
	pod.Status.Message = msg
	now := metav1.Now()
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128, Reason: reason, Message: msg, FinishedAt: now}},
		})
	}
	p.log.Warn("pod failed to start", "pod", podKey(pod.Namespace, pod.Name), "reason", reason, "message", msg)
	p.closeExited(st)
	p.update(st, pod)
}

func (p *provider) update(st *podState, pod *corev1.Pod) {
	p.mu.Lock()
	st.pod = pod
	notify := p.notify
	p.mu.Unlock()
	if notify != nil {
		notify(pod.DeepCopy())
	}
}

// UpdatePod is a no-op: a running process cannot take a new spec.
func (p *provider) UpdatePod(context.Context, *corev1.Pod) error { return nil }

// DeletePod stops the pod's processes (SIGTERM, SIGKILL after the grace
// period), removes its directory and reports its containers terminated.
func (p *provider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	key := podKey(pod.Namespace, pod.Name)
	p.mu.Lock()
	st, ok := p.pods[key]
	if !ok {
		p.mu.Unlock()
		return errdefs.NotFoundf("pod %s is not on this node", key)
	}
	st.deleted = true
	p.mu.Unlock()

	grace := 2 * time.Second
	if s := pod.DeletionGracePeriodSeconds; s != nil && *s >= 0 && time.Duration(*s)*time.Second < grace {
		grace = time.Duration(*s) * time.Second
	}
	p.signalAll(st, syscall.SIGTERM)
	select {
	case <-st.exited:
	case <-time.After(grace):
		p.killAllOf(st)
		<-st.exited
	}
	// The volumes (secret material) go with the pod; the logs stay until
	// the agent's directory is removed, for tests to read after the fact.
	removeAll(filepath.Join(st.dir, "volumes"))
	removeAll(filepath.Join(st.dir, "tmp"))

	p.mu.Lock()
	delete(p.pods, key)
	out := st.pod.DeepCopy()
	notify := p.notify
	p.mu.Unlock()
	now := metav1.Now()
	if out.Status.Phase != corev1.PodFailed && out.Status.Phase != corev1.PodSucceeded {
		out.Status.Phase = corev1.PodSucceeded
	}
	for i := range out.Status.ContainerStatuses {
		cs := &out.Status.ContainerStatuses[i]
		if cs.State.Terminated == nil {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "PodDeleted", FinishedAt: now}}
		}
		cs.Ready = false
	}
	if notify != nil {
		notify(out)
	}
	// As the kubelet does once a deleted pod's containers are gone: remove
	// it from the API at once rather than after its grace period.
	zero := int64(0)
	uid := pod.UID
	err := p.client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		p.log.Warn("final delete of pod", "pod", key, "err", err)
	}
	return nil
}

func (p *provider) signalAll(st *podState, sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cmd := range st.procs {
		if cmd.Process != nil {
			_ = cmd.Process.Signal(sig)
		}
	}
}

func (p *provider) killAllOf(st *podState) { p.signalAll(st, syscall.SIGKILL) }

// killAll kills every pod's processes when the agent stops.
func (p *provider) killAll() {
	if p == nil {
		return
	}
	p.mu.Lock()
	pods := make([]*podState, 0, len(p.pods))
	for _, st := range p.pods {
		pods = append(pods, st)
	}
	p.mu.Unlock()
	for _, st := range pods {
		p.killAllOf(st)
	}
}

// removeAll removes a pod directory whose read-only volume directories
// would otherwise refuse the removal of their files.
func removeAll(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

// GetPod returns the pod as last reported.
func (p *provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.pods[podKey(namespace, name)]
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, name)
	}
	return st.pod.DeepCopy(), nil
}

// GetPodStatus returns the pod's status as last reported.
func (p *provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every pod on the node.
func (p *provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.pods))
	for _, st := range p.pods {
		out = append(out, st.pod.DeepCopy())
	}
	return out, nil
}

// GetContainerLogs returns what a container wrote to stdout and stderr.
func (p *provider) GetContainerLogs(_ context.Context, namespace, podName, containerName string, _ api.ContainerLogOpts) (io.ReadCloser, error) {
	p.mu.Lock()
	st, ok := p.pods[podKey(namespace, podName)]
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, podName)
	}
	return os.Open(filepath.Join(st.dir, containerName+".log"))
}

var errUnsupported = errors.New("not supported by the sluice test node")

// RunInContainer is not supported (no exec into local processes).
func (p *provider) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return errUnsupported
}

// AttachToContainer is not supported.
func (p *provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errUnsupported
}

// GetStatsSummary is not supported.
func (p *provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return nil, errUnsupported
}

// GetMetricsResource is not supported.
func (p *provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, errUnsupported
}

// PortForward is not supported: pods listen on the host's loopback already.
func (p *provider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errUnsupported
}

// containerEnv is the environment of a container: a minimal base (not the
// agent's), what Kubernetes adds, and the container's own env.
func (p *provider) containerEnv(st *podState, c corev1.Container) []string {
	tmp := filepath.Join(st.dir, "tmp")
	_ = os.MkdirAll(tmp, 0o1777)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + st.dir,
		"TMPDIR=" + tmp,
		"HOSTNAME=" + st.pod.Name,
		"KUBERNETES_SERVICE_HOST=" + p.apiHost,
		"KUBERNETES_SERVICE_PORT=" + p.apiPort,
		"KUBERNETES_SERVICE_PORT_HTTPS=" + p.apiPort,
	}
	// GOCOVERDIR and the race detector's options follow the binary under test.
	for _, k := range []string{"GOCOVERDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, e := range c.Env {
		switch e.Name {
		case "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS":
			// virtual-kubelet adds the kubernetes Service's cluster IP,
			// which nothing serves here: in-cluster clients use the API
			// server's real address set above.
			continue
		}
		env = append(env, e.Name+"="+e.Value)
	}
	return env
}

// command builds a container's process: the pod-exec re-exec of this agent
// in a new mount namespace, which mounts the volumes and execs the command.
func (p *provider) command(st *podState, c corev1.Container, mounts map[string]volumeDir) (*exec.Cmd, error) {
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("no command: the test node cannot run an image's entrypoint (image %q ignored)", c.Image)
	}
	env := p.containerEnv(st, c)
	vars := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	argv := append(append([]string{}, c.Command...), c.Args...)
	for i := range argv {
		argv[i] = expand(argv[i], vars)
	}
	if filepath.Base(argv[0]) == "sluice" {
		argv[0] = p.sluiceBin
	}
	workDir := c.WorkingDir
	if workDir == "" {
		workDir = st.dir
	}
	args := []string{podExecCommand, "-chdir", workDir}
	for _, m := range c.VolumeMounts {
		v, ok := mounts[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %s: no volume %q in the pod", m.MountPath, m.Name)
		}
		src := v.path
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
		}
		mode := "rw"
		if m.ReadOnly || v.readOnly {
			mode = "ro"
		}
		args = append(args, "-mount", src+":"+m.MountPath+":"+mode)
	}
	args = append(args, "--")
	args = append(args, argv...)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(st.dir, c.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = env
	cmd.Dir = st.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// A mount namespace of the pod's own; the pod dies with the agent. The
	// pod stays in the agent's process group so that killing the agent's
	// group (what the test harness does) takes every pod with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// runInit runs an init container to completion.
func (p *provider) runInit(ctx context.Context, st *podState, c corev1.Container, mounts map[string]volumeDir) (int32, error) {
	cmd, err := p.command(st, c, mounts)
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	return exitCode(cmd, err), nil
}

// expand replaces $(VAR) references as the kubelet does; $$ escapes.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
					name := s[i+2 : i+2+end]
					if v, ok := vars[name]; ok {
						b.WriteString(v)
						i += 2 + end
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
