package kubernetes

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// caRegistryKey is the registry's key in its Secret.
const caRegistryKey = "registry.json"

// CARegistrySecretName is the Secret holding the automatic cluster CA's
// registry: join-token records (with a digest of each active token's
// secret, so TaskManager pods holding a token of the previous leader still
// join) and revoked certificates. A Secret, not a ConfigMap, because of
// those digests; separate from the CA's own Secret so frequent updates
// never rewrite the CA key.
func CARegistrySecretName(clusterID string) string { return clusterID + "-cluster-ca-registry" }

// PutCARegistry replaces the registry in its Secret, guarded by leadership
// like every other high-availability write.
func (l *leadership) PutCARegistry(ctx context.Context, data []byte) error {
	return guardedUpdate(ctx, l, l.secretOps(), CARegistrySecretName(l.s.set.ClusterID), func(s *corev1.Secret) error {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[caRegistryKey] = data
		return nil
	})
}

// CARegistry reads the registry from its Secret.
func (l *leadership) CARegistry(ctx context.Context) ([]byte, bool, error) {
	s := l.s
	name := CARegistrySecretName(s.set.ClusterID)
	sec, err := s.client.CoreV1().Secrets(s.set.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the cluster CA registry Secret %s/%s (the JobManager's service account needs get on it; see sluice kubernetes-session rbac): %w", s.set.Namespace, name, err)
	}
	data, ok := sec.Data[caRegistryKey]
	return data, ok, nil
}
