package session

import (
	"bytes"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// RoleName is the name of the JobManager's Role and RoleBinding.
func RoleName(clusterID string) string { return clusterID + "-jobmanager" }

// JobManagerRole is the least the JobManager's ServiceAccount needs, in its
// own namespace only: pods (TaskManagers on demand), configmaps (its
// configuration and the high-availability metadata) and leases (leader
// election). No Secrets: what the pods need is mounted by the kubelet, so a
// compromised JobManager cannot read the namespace's other Secrets.
func JobManagerRole(namespace, clusterID string) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: RoleName(clusterID), Namespace: namespace, Labels: Labels(clusterID, "")},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "delete", "deletecollection"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		},
	}
}

// JobManagerRoleBinding binds JobManagerRole to the ServiceAccount.
func JobManagerRoleBinding(namespace, clusterID, serviceAccount string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: RoleName(clusterID), Namespace: namespace, Labels: Labels(clusterID, "")},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: RoleName(clusterID)},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: namespace}},
	}
}

// RBACManifest renders the Role and RoleBinding as YAML documents for
// kubectl apply -f.
func RBACManifest(namespace, clusterID, serviceAccount string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Minimal RBAC for the JobManager of session %s (ServiceAccount %s/%s): pods, configmaps\n"+
		"# and leases in namespace %s only. Apply it before sluice kubernetes-session start.\n", clusterID, namespace, serviceAccount, namespace)
	for i, obj := range []any{JobManagerRole(namespace, clusterID), JobManagerRoleBinding(namespace, clusterID, serviceAccount)} {
		y, err := sigsyaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
