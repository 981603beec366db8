// Command sluice-test-node is the node agent of sluice's Kubernetes
// integration tests: a virtual-kubelet node whose provider runs every Pod
// bound to it as local processes of the sluice binary under test. With it, a
// real kube-apiserver (and the controller-manager's deployment, replicaset
// and garbage-collector controllers) place sluice's JobManager and
// TaskManager pods on this machine without a container runtime.
//
// What a pod gets, and what it does not:
//   - each container runs its command and args; a command whose first element
//     is named "sluice" (any directory) runs the binary given by -sluice. The
//     image is ignored. Env (with valueFrom resolved by virtual-kubelet) and
//     KUBERNETES_SERVICE_HOST/PORT pointing at the API server are set.
//   - Secret, ConfigMap, projected (ServiceAccount token, ConfigMap, Secret,
//     downward API) and emptyDir volumes are materialized in a per-pod
//     directory with the pod's file modes, and bind-mounted at their
//     mountPath (read-only unless the mount says otherwise) in a mount
//     namespace of the pod's own, so the pod sees the paths its spec names
//     and cannot write to its Secrets.
//   - all pods share the host's network (pod IP 127.0.0.1): their ports must
//     not collide.
//   - restartPolicy is not applied: a container that exits ends its pod
//     (Succeeded, or Failed with the exit code); a ReplicaSet replaces it.
//
// There is no kube-scheduler in the tests: the agent binds every pod that
// has no node and asks for the default scheduler to its own node, after
// checking the pod's resource requests against the node's free capacity as
// the scheduler would (a pod that does not fit stays Pending with
// PodScheduled=False, reason Unschedulable).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == podExecCommand {
		podExec(os.Args[2:])
		return
	}
	var (
		kubeconfig = flag.String("kubeconfig", "", "kubeconfig of the API server (an identity that may bind pods, read Secrets and ConfigMaps and create ServiceAccount tokens)")
		nodeName   = flag.String("node-name", "sluice-test-node", "name of the Node to register")
		sluiceBin  = flag.String("sluice", "", "the sluice binary that runs a container whose command is sluice")
		dir        = flag.String("dir", "", "directory for the pods' volumes, working directories and logs")
		cpu        = flag.String("cpu", "16", "the node's CPU capacity")
		memory     = flag.String("memory", "64Gi", "the node's memory capacity")
		maxPods    = flag.Int("pods", 110, "the node's pod capacity")
	)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	vklog.L = vkslog.FromSlog(logger)
	if err := run(*kubeconfig, *nodeName, *sluiceBin, *dir, *cpu, *memory, *maxPods, logger); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-test-node:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, nodeName, sluiceBin, dir, cpu, memory string, maxPods int, logger *slog.Logger) error {
	if kubeconfig == "" || sluiceBin == "" || dir == "" {
		return fmt.Errorf("-kubeconfig, -sluice and -dir are required")
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load -kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("client for %s: %w", restConfig.Host, err)
	}
	u, err := url.Parse(restConfig.Host)
	if err != nil {
		return fmt.Errorf("API server address %q in %s: %w", restConfig.Host, kubeconfig, err)
	}
	apiHost, apiPort, err := net.SplitHostPort(u.Host)
	if err != nil {
		return fmt.Errorf("API server address %q in %s has no port: %w", restConfig.Host, kubeconfig, err)
	}
	ca := restConfig.CAData
	if len(ca) == 0 && restConfig.CAFile != "" {
		if ca, err = os.ReadFile(restConfig.CAFile); err != nil {
			return fmt.Errorf("read the API server's CA: %w", err)
		}
	}
	sluiceBin, err = filepath.Abs(sluiceBin)
	if err != nil {
		return err
	}
	capacity := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: cpu, corev1.ResourceMemory: memory, corev1.ResourcePods: strconv.Itoa(maxPods)} {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return fmt.Errorf("node capacity %s %q: %w", name, v, err)
		}
		capacity[name] = q
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var p *provider
	n, err := nodeutil.NewNode(nodeName, func(cfg nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		cfg.Node.Status.Capacity = capacity
		cfg.Node.Status.Allocatable = capacity
		cfg.Node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: nodeName}}
		cfg.Node.Status.NodeInfo.OperatingSystem = "linux"
		cfg.Node.Status.NodeInfo.Architecture = "amd64"
		cfg.Node.Status.NodeInfo.KubeletVersion = "sluice-test-node"
		p = &provider{
			client:    client,
			sluiceBin: sluiceBin,
			root:      dir,
			apiHost:   apiHost,
			apiPort:   apiPort,
			apiCA:     ca,
			nodeName:  nodeName,
			log:       logger,
			pods:      map[string]*podState{},
		}
		return p, nil, nil
	}, nodeutil.WithClient(client), func(c *nodeutil.NodeConfig) error {
		// The provider resolves env itself: virtual-kubelet cannot resolve
		// status.podIP before the pod runs, and fails such pods.
		c.SkipDownwardAPIResolution = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("set up node %s: %w", nodeName, err)
	}

	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	if err := n.WaitReady(ctx, time.Minute); err != nil {
		return fmt.Errorf("node %s did not become ready: %w", nodeName, err)
	}
	logger.Info("node ready", "node", nodeName)

	b := &binder{client: client, nodeName: nodeName, capacity: capacity, log: logger}
	bindDone := make(chan struct{})
	go func() { defer close(bindDone); b.run(ctx) }()

	err = <-errc
	stop()
	<-bindDone
	p.killAll()
	if ctx.Err() != nil {
		return nil
	}
	return err
}
