package resourcemanager

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/ha"
)

// The client (sluice kubernetes-session start) stores the TaskManager pod
// template in the cluster's ConfigMap under this key.
const (
	TemplateKey = "taskmanager-pod-template.yaml"
)

// ConfigMapName is the cluster's ConfigMap (config.yaml and the template).
func ConfigMapName(clusterID string) string { return clusterID + "-config" }

// JoinTokenSecretName is the Secret holding the join token TaskManager pods
// join the automatic cluster CA with.
func JoinTokenSecretName(clusterID string) string { return clusterID + "-join-token" }

// Enabled reports whether the JobManager runs a Kubernetes resource
// manager: it was deployed natively (execution.target kubernetes-session or
// kubernetes-application, set by the client).
func Enabled(cfg *config.Config) bool {
	switch cfg.String("execution.target") {
	case "kubernetes-session", "kubernetes-application":
		return true
	}
	return false
}

// JoinTokens issues join tokens admitting any number of joins for ttl
// (internaltls.JobManager.NewJoinToken in automatic mode).
type JoinTokens func(ttl time.Duration) (string, error)

// FromConfig builds the resource manager of a natively deployed
// JobManager: the TaskManager pod template from the cluster's ConfigMap,
// the JobManager Deployment as the pods' owner, and, in automatic TLS mode
// (tokens != nil), a join-token Secret the pods mount.
func FromConfig(ctx context.Context, client kubernetes.Interface, cfg *config.Config, tokens JoinTokens, log *slog.Logger) (*ResourceManager, error) {
	ns, id := cfg.String("kubernetes.namespace"), cfg.String("kubernetes.cluster-id")
	if id == "" {
		return nil, fmt.Errorf("kubernetes.cluster-id is not set: the resource manager names its pods after it (sluice kubernetes-session start sets it)")
	}
	cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, ConfigMapName(id), metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read the TaskManager pod template from ConfigMap %s/%s (the JobManager's service account needs get on configmaps: sluice kubernetes-session rbac): %w", ns, ConfigMapName(id), err)
	}
	raw, ok := cm.Data[TemplateKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s/%s has no %s: recreate the session with this version's sluice kubernetes-session start", ns, cm.Name, TemplateKey)
	}
	var tmpl corev1.Pod
	if err := yaml.Unmarshal([]byte(raw), &tmpl); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %s: %w", ns, cm.Name, TemplateKey, err)
	}
	if len(tmpl.Spec.Containers) == 0 {
		return nil, fmt.Errorf("ConfigMap %s/%s: %s has no container", ns, cm.Name, TemplateKey)
	}
	haSet, err := ha.SettingsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	if haSet.Enabled() {
		// TaskManagers find the leader through its ConfigMap.
		yes := true
		tmpl.Spec.AutomountServiceAccountToken = &yes
		if sa := cfg.String("kubernetes.taskmanager.service-account"); sa != "" {
			tmpl.Spec.ServiceAccountName = sa
		}
	}
	rc := Config{
		Client: client, Namespace: ns, ClusterID: id, Template: &tmpl, Labels: tmpl.Labels,
		SlotsPerTaskManager: cfg.Int("taskmanager.numberOfTaskSlots"),
		IdleTimeout:         cfg.Duration("resourcemanager.taskmanager-timeout"),
		StartupTimeout:      cfg.Duration("resourcemanager.taskmanager-startup-timeout"),
		Logger:              log,
	}
	if cfg.Bool("security.delegation.tokens.enabled") {
		rc.KeytabPath = cfg.String("security.kerberos.login.keytab")
	}
	if d, err := client.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{}); err == nil {
		yes := true
		rc.Owner = &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, BlockOwnerDeletion: &yes}
	} else {
		log.Warn("TaskManager pods get no owner reference: cannot read the JobManager Deployment (sluice kubernetes-session stop still deletes them by label)", "deployment", ns+"/"+id, "err", err)
	}
	if tokens != nil {
		rc.JoinTokenSecret = JoinTokenSecretName(id)
		ttl := cfg.Duration("security.cluster.join-token.ttl")
		if err := writeJoinToken(ctx, client, ns, id, rc.Owner, tokens, ttl); err != nil {
			return nil, err
		}
		rc.refreshToken = func(ctx context.Context) error { return writeJoinToken(ctx, client, ns, id, rc.Owner, tokens, ttl) }
		rc.refreshEvery = ttl / 2
	}
	return New(rc)
}

// writeJoinToken issues a join token and stores it in the join-token
// Secret, creating it. Each JobManager leader issues its own: its
// predecessor's tokens are not in its registry.
func writeJoinToken(ctx context.Context, client kubernetes.Interface, ns, id string, owner *metav1.OwnerReference, tokens JoinTokens, ttl time.Duration) error {
	tok, err := tokens(ttl)
	if err != nil {
		return fmt.Errorf("issue the join token of the TaskManager pods: %w", err)
	}
	secrets := client.CoreV1().Secrets(ns)
	name := JoinTokenSecretName(id)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": id, "type": "sluice-native-kubernetes"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{JoinTokenKey: []byte(tok)},
		}
		if owner != nil {
			s.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Secret %s/%s (the JobManager's service account needs create on secrets in its namespace): %w", ns, name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read Secret %s/%s: %w", ns, name, err)
	}
	s.Data = map[string][]byte{JoinTokenKey: []byte(tok)}
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Secret %s/%s (the JobManager's service account needs update on secrets in its namespace): %w", ns, name, err)
	}
	return nil
}
