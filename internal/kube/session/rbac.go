package session

import (
	"bytes"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	hakube "github.com/sluice-dev/sluice/internal/ha/kubernetes"
)

// RoleName is the name of the JobManager's Role and RoleBinding.
func RoleName(clusterID string) string { return clusterID + "-jobmanager" }

// joinTokenSecretName and the HA names are those the JobManager uses
// (resourcemanager.JoinTokenSecretName, hakube.*; a test keeps them equal).
func joinTokenSecretName(clusterID string) string { return clusterID + "-join-token" }

// RBACOptions say what the JobManager does beyond the minimum.
type RBACOptions struct {
	// AutoTLS: the automatic cluster CA (security.ssl.internal.auto); the
	// JobManager keeps the join token and the CA in Secrets of its own.
	AutoTLS bool
	// TaskManagerServiceAccount, when it differs from the JobManager's
	// and high availability is on, gets a Role of its own: TaskManagers
	// read the leader's address from the cluster ConfigMap.
	TaskManagerServiceAccount string
	// Application: an application cluster (execution.target
	// kubernetes-application) deletes its own Deployment when its job has
	// ended.
	Application bool
}

// JobManagerRole is the least the JobManager's ServiceAccount needs, in its
// own namespace only: pods (TaskManagers on demand), configmaps (its
// configuration and the high-availability metadata), leases (leader
// election) and its own Deployment (the owner of its TaskManager pods).
// Secrets only in automatic TLS mode, and then only reading and updating
// its join-token, cluster-CA and CA-registry Secrets (create cannot be limited to names
// by RBAC): what the pods need is mounted by the kubelet, so a compromised
// JobManager cannot read the keytab, the key stores or any other Secret.
func JobManagerRole(namespace, clusterID string, o RBACOptions) *rbacv1.Role {
	r := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: RoleName(clusterID), Namespace: namespace, Labels: Labels(clusterID, "")},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "update"},
				ResourceNames: []string{hakube.LeaseName(clusterID)}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get"}, ResourceNames: []string{clusterID}},
		},
	}
	if o.Application {
		r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"delete"}, ResourceNames: []string{clusterID}})
	}
	if o.AutoTLS {
		r.Rules = append(r.Rules,
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "update"},
				ResourceNames: []string{joinTokenSecretName(clusterID), hakube.ClusterCASecretName(clusterID), hakube.CARegistrySecretName(clusterID)}},
		)
	}
	return r
}

// TaskManagerRole lets TaskManagers read the cluster ConfigMap, where the
// high-availability leader publishes its address.
func TaskManagerRole(namespace, clusterID string) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: clusterID + "-taskmanager", Namespace: namespace, Labels: Labels(clusterID, "")},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"},
			ResourceNames: []string{hakube.ClusterConfigMapName(clusterID)}}},
	}
}

// JobManagerRoleBinding binds JobManagerRole to the ServiceAccount.
func JobManagerRoleBinding(namespace, clusterID, serviceAccount string) *rbacv1.RoleBinding {
	return roleBinding(namespace, clusterID, RoleName(clusterID), serviceAccount)
}

func roleBinding(namespace, clusterID, role, serviceAccount string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: namespace, Labels: Labels(clusterID, "")},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: namespace}},
	}
}

// RBACManifest renders the Role and RoleBinding as YAML documents for
// kubectl apply -f.
func RBACManifest(namespace, clusterID, serviceAccount string, o RBACOptions) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Minimal RBAC for the JobManager of session %s (ServiceAccount %s/%s): pods, configmaps\n"+
		"# and leases in namespace %s only", clusterID, namespace, serviceAccount, namespace)
	if o.AutoTLS {
		b.WriteString(", and its join-token, cluster-CA and CA-registry Secrets (automatic TLS)")
	}
	b.WriteString(".\n# Apply it before sluice kubernetes-session start: kubectl apply -f -\n")
	objs := []any{JobManagerRole(namespace, clusterID, o), JobManagerRoleBinding(namespace, clusterID, serviceAccount)}
	if o.TaskManagerServiceAccount != "" && o.TaskManagerServiceAccount != serviceAccount {
		role := TaskManagerRole(namespace, clusterID)
		objs = append(objs, role, roleBinding(namespace, clusterID, role.Name, o.TaskManagerServiceAccount))
	}
	for i, obj := range objs {
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
