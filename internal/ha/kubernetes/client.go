package kubernetes

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-dev/sluice/internal/config"
)

// NewClient connects to the Kubernetes API as Flink's native mode does:
// kubernetes.config.file (with kubernetes.context) when set, else the
// in-cluster service account when running in a pod, else ~/.kube/config
// (or $KUBECONFIG).
func NewClient(cfg *config.Config) (kubernetes.Interface, error) {
	rc, err := RESTConfig(cfg)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// RESTConfig is the client configuration NewClient uses.
func RESTConfig(cfg *config.Config) (*rest.Config, error) {
	file, kctx := cfg.String("kubernetes.config.file"), cfg.String("kubernetes.context")
	if file == "" && kctx == "" {
		rc, err := rest.InClusterConfig()
		if err == nil {
			return rc, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("in-cluster Kubernetes configuration: %w (set kubernetes.config.file to use a kubeconfig instead)", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("kubernetes.config.file: %w", err)
		}
		rules.ExplicitPath = file
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kctx}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load the kubeconfig (kubernetes.config.file %q, kubernetes.context %q; not running in a pod): %w", file, kctx, err)
	}
	return rc, nil
}
