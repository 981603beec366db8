package kubernetes

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/internal/security/ca"
)

// ClusterCASecretName is the Secret holding the automatic cluster CA.
func ClusterCASecretName(clusterID string) string { return clusterID + "-cluster-ca" }

// ShareClusterCA makes every JobManager replica of a cluster use one
// automatic cluster CA (security.ssl.internal.auto), kept in the Secret
// <cluster-id>-cluster-ca: the first replica creates the CA and the Secret,
// the others (and a restarted one) write the Secret's CA into dir before
// internal TLS starts. Certificates a leader issued stay valid under its
// successor, so TaskManagers reconnect without joining again.
func ShareClusterCA(ctx context.Context, client kubernetes.Interface, namespace, clusterID, dir string) error {
	secrets := client.CoreV1().Secrets(namespace)
	name := ClusterCASecretName(clusterID)
	what := fmt.Sprintf("cluster CA Secret %s/%s", namespace, name)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := ca.LoadOrCreate(dir, ""); err != nil {
			return fmt.Errorf("security.ssl.internal.auto.dir: %w", err)
		}
		cert, err := os.ReadFile(filepath.Join(dir, ca.CertFile))
		if err != nil {
			return err
		}
		key, err := os.ReadFile(filepath.Join(dir, ca.KeyFile))
		if err != nil {
			return err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{LabelApp: clusterID, LabelType: TypeValue}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{ca.CertFile: cert, ca.KeyFile: key},
		}
		_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s (the JobManager's service account needs create on secrets in its namespace): %w", what, err)
		}
		// Another replica was first: use its CA.
		if s, err = secrets.Get(ctx, name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	} else if err != nil {
		return fmt.Errorf("read %s (the JobManager's service account needs get on secrets in its namespace): %w", what, err)
	}
	cert, key := s.Data[ca.CertFile], s.Data[ca.KeyFile]
	if len(cert) == 0 || len(key) == 0 {
		return fmt.Errorf("%s lacks %s or %s: delete it to have a new CA created (TaskManagers must then join again)", what, ca.CertFile, ca.KeyFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("security.ssl.internal.auto.dir: %w", err)
	}
	if err := writeIfChanged(filepath.Join(dir, ca.CertFile), cert, 0o644); err != nil {
		return err
	}
	return writeIfChanged(filepath.Join(dir, ca.KeyFile), key, 0o600)
}

// writeIfChanged replaces path with data (mode perm) unless it holds it.
func writeIfChanged(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
