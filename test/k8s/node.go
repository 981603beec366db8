package k8s

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeName is the name of the Node the test node agent registers.
const NodeName = "sluice-test-node"

// Node is the running test node agent.
type Node struct {
	// Dir holds each pod's directory, <namespace>_<name>_<uid>, with its
	// volumes, <container>.log and <container>.pid.
	Dir string
	// Log is the agent's own log file.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
}

// Node starts the test node agent on first use (one per control plane) and
// waits until its Node is Ready. Pods run sluiceBin for a command named
// sluice. A later call with another binary fails the test.
func (a *APIServer) Node(t testing.TB, sluiceBin string) *Node {
	t.Helper()
	a.nodeMu.Lock()
	defer a.nodeMu.Unlock()
	if a.node != nil {
		if a.node.exited() {
			t.Fatalf("the test node agent exited; its log: %s", a.node.Log)
		}
		return a.node
	}
	agent := a.agent
	if _, err := os.Stat(agent); err != nil {
		t.Fatalf("test node agent: %v (built by test/k8s/build.sh)", err)
	}
	n := &Node{Dir: a.path("node"), Log: a.path("sluice-test-node.log"), done: make(chan struct{})}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(n.Log)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(agent, "-kubeconfig", a.AdminKubeconfig, "-node-name", NodeName, "-sluice", sluiceBin, "-dir", n.Dir)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start test node agent: %v", err)
	}
	go func() { _ = n.cmd.Wait(); f.Close(); close(n.done) }()
	WaitFor(t, 60*time.Second, "node "+NodeName+" Ready", func(ctx context.Context) error {
		if n.exited() {
			b, _ := os.ReadFile(n.Log)
			t.Fatalf("test node agent exited:\n%s", tail(string(b), 3000))
		}
		node, err := a.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready: %v", NodeName, node.Status.Conditions)
	})
	a.node = n
	return n
}

func (n *Node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// stop stops the agent and, with its process group, every pod it runs.
func (n *Node) stop() {
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
}

// PodLog returns what a pod's container wrote so far.
func (n *Node) PodLog(pod *corev1.Pod, container string) string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), container+".log"))
	return string(b)
}
