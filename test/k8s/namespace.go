package k8s

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var getOpts = metav1.GetOptions{}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Namespace creates a namespace named after prefix with a random suffix and
// its default ServiceAccount (there is no ServiceAccount controller), and
// deletes it when the test ends.
func (a *APIServer) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := strings.ToLower(prefix) + "-" + randomHex(3)
	if _, err := a.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	a.ServiceAccount(t, name, "default")
	return name
}

// ServiceAccount creates a ServiceAccount unless it exists.
func (a *APIServer) ServiceAccount(t testing.TB, namespace, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := a.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create service account %s/%s: %v", namespace, name, err)
	}
}

// ServiceAccountToken returns a token of a ServiceAccount (TokenRequest),
// valid for an hour.
func (a *APIServer) ServiceAccountToken(t testing.TB, namespace, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp := int64(3600)
	tr, err := a.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for service account %s/%s: %v", namespace, name, err)
	}
	return tr.Status.Token
}

// ServiceAccountClient returns a clientset that acts as a ServiceAccount,
// so requests go through the real authenticator and RBAC authorizer.
func (a *APIServer) ServiceAccountClient(t testing.TB, namespace, name string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(a.Config)
	cfg.BearerToken = a.ServiceAccountToken(t, namespace, name)
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Kubeconfig writes a kubeconfig for token into the test's temporary
// directory and returns its path.
func (a *APIServer) Kubeconfig(t testing.TB, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := a.writeKubeconfig(path, token); err != nil {
		t.Fatal(err)
	}
	return path
}

// WaitFor polls cond every 100ms until it returns nil or timeout passes, then
// fails the test with cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			t.Logf("%s after %s", what, time.Until(deadline.Add(-timeout)).Abs().Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
