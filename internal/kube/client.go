// Package kube connects sluice to a Kubernetes API server with Flink's
// keys: kubernetes.config.file, else the in-cluster configuration when
// running in a pod, else the default kubeconfig ($KUBECONFIG, then
// ~/.kube/config); kubernetes.context picks the context.
package kube

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sluice-dev/sluice/internal/config"
)

// RESTConfig returns the REST configuration the keys select.
func RESTConfig(cfg *config.Config) (*rest.Config, error) {
	file := cfg.String("kubernetes.config.file")
	kubeContext := cfg.String("kubernetes.context")
	if file == "" && kubeContext == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
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
	overrides := &clientcmd.ConfigOverrides{CurrentContext: kubeContext}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		where := "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
		if file != "" {
			where = file
		}
		return nil, fmt.Errorf("load Kubernetes client configuration from %s: %w (set kubernetes.config.file and kubernetes.context)", where, err)
	}
	return rc, nil
}

// NewClient returns a clientset for the configured API server.
func NewClient(cfg *config.Config) (kubernetes.Interface, error) {
	rc, err := RESTConfig(cfg)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client for the Kubernetes API server %s: %w", rc.Host, err)
	}
	return c, nil
}
