package session

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	hakube "github.com/sluice-dev/sluice/internal/ha/kubernetes"
)

// Start creates the session's objects: the Deployment first, then every
// other object owned by it, so that deleting the Deployment (or a failed
// start, which deletes it) takes everything with it. A session of the same
// cluster id must not exist.
func Start(ctx context.Context, client kubernetes.Interface, o *Objects) (err error) {
	deployments := client.AppsV1().Deployments(o.Namespace)
	if _, err := deployments.Get(ctx, o.Deployment.Name, metav1.GetOptions{}); err == nil {
		return fmt.Errorf("a session %q already runs in namespace %s: stop it first (sluice kubernetes-session stop) or choose another kubernetes.cluster-id", o.ClusterID, o.Namespace)
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("look up Deployment %s/%s: %w", o.Namespace, o.Deployment.Name, err)
	}
	d, err := deployments.Create(ctx, o.Deployment, metav1.CreateOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("create the JobManager Deployment %s/%s: %w (create the namespace, or set kubernetes.namespace)", o.Namespace, o.Deployment.Name, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("create the JobManager Deployment %s/%s: %w (your Kubernetes user needs create on deployments, services, configmaps and secrets in namespace %s; see docs/kubernetes.md, RBAC)", o.Namespace, o.Deployment.Name, err, o.Namespace)
	case err != nil:
		return fmt.Errorf("create the JobManager Deployment %s/%s: %w", o.Namespace, o.Deployment.Name, err)
	}
	defer func() {
		if err != nil {
			// Best effort, with a context of its own: the caller's may be done.
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if derr := Stop(cctx, client, o.Namespace, o.ClusterID); derr != nil {
				err = errors.Join(err, fmt.Errorf("clean up the partly created session: %w", derr))
			}
		}
	}()
	owner := []metav1.OwnerReference{OwnerReference(d)}
	for _, s := range o.Secrets {
		s = s.DeepCopy()
		s.OwnerReferences = owner
		if _, err := client.CoreV1().Secrets(o.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", o.Namespace, s.Name, err)
		}
	}
	cm := o.ConfigMap.DeepCopy()
	cm.OwnerReferences = owner
	if _, err := client.CoreV1().ConfigMaps(o.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ConfigMap %s/%s: %w", o.Namespace, cm.Name, err)
	}
	for _, svc := range []*corev1.Service{o.RPCService, o.RESTService} {
		svc = svc.DeepCopy()
		svc.OwnerReferences = owner
		if _, err := client.CoreV1().Services(o.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", o.Namespace, svc.Name, err)
		}
	}
	return nil
}

// OwnerReference makes an object go with the JobManager Deployment.
func OwnerReference(d *appsv1.Deployment) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
		Controller: &yes, BlockOwnerDeletion: &yes,
	}
}

// Stop deletes every object of the session: the Deployment (its
// ReplicaSets and pods follow through the garbage collector) and, without
// waiting for the collector, everything labelled with the session's id
// (Services, ConfigMaps including the high-availability ones, Secrets, pods
// such as TaskManagers). Objects already gone are not an error.
func Stop(ctx context.Context, client kubernetes.Interface, namespace, clusterID string) error {
	sel := metav1.ListOptions{LabelSelector: SelectorFor(clusterID)}
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	var errs []error
	note := func(what string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", what, err))
		}
	}
	note("Deployment "+clusterID, client.AppsV1().Deployments(namespace).Delete(ctx, clusterID, del))
	// List and delete one by one rather than DeleteCollection: the user's
	// RBAC then needs list and delete only.
	deleteEach(ctx, "Deployment", note, func() ([]string, error) {
		l, err := client.AppsV1().Deployments(namespace).List(ctx, sel)
		return names(l, err, func(i int) string { return l.Items[i].Name }, func() int { return len(l.Items) })
	}, func(n string) error { return client.AppsV1().Deployments(namespace).Delete(ctx, n, del) })
	deleteEach(ctx, "ReplicaSet", note, func() ([]string, error) {
		l, err := client.AppsV1().ReplicaSets(namespace).List(ctx, sel)
		return names(l, err, func(i int) string { return l.Items[i].Name }, func() int { return len(l.Items) })
	}, func(n string) error { return client.AppsV1().ReplicaSets(namespace).Delete(ctx, n, del) })
	// TaskManager pods carry the session's labels (from the template); the
	// selector also catches any labelled only app and component.
	podSel := metav1.ListOptions{LabelSelector: LabelApp + "=" + clusterID + "," + LabelComponent + " in (jobmanager,taskmanager)"}
	deleteEach(ctx, "Pod", note, func() ([]string, error) {
		l, err := client.CoreV1().Pods(namespace).List(ctx, podSel)
		return names(l, err, func(i int) string { return l.Items[i].Name }, func() int { return len(l.Items) })
	}, func(n string) error { return client.CoreV1().Pods(namespace).Delete(ctx, n, del) })
	deleteEach(ctx, "Service", note, func() ([]string, error) {
		l, err := client.CoreV1().Services(namespace).List(ctx, sel)
		return names(l, err, func(i int) string { return l.Items[i].Name }, func() int { return len(l.Items) })
	}, func(n string) error { return client.CoreV1().Services(namespace).Delete(ctx, n, del) })
	deleteEach(ctx, "ConfigMap", note, func() ([]string, error) {
		l, err := client.CoreV1().ConfigMaps(namespace).List(ctx, sel)
		return names(l, err, func(i int) string { return l.Items[i].Name }, func() int { return len(l.Items) })
	}, func(n string) error { return client.CoreV1().ConfigMaps(namespace).Delete(ctx, n, del) })
	deleteEach(ctx, "Secret", note, func() ([]string, error) {
		l, err := client.CoreV1().Secrets(namespace).List(ctx, sel)
		return names(l, err, func(i int) string { return l.Items[i].Name }, func() int { return len(l.Items) })
	}, func(n string) error { return client.CoreV1().Secrets(namespace).Delete(ctx, n, del) })
	// The leader-election Lease of high availability carries no labels.
	note("Lease "+hakube.LeaseName(clusterID), client.CoordinationV1().Leases(namespace).Delete(ctx, hakube.LeaseName(clusterID), del))
	return errors.Join(errs...)
}

func deleteEach(_ context.Context, kind string, note func(string, error), list func() ([]string, error), del func(string) error) {
	ns, err := list()
	if err != nil {
		note(kind+"s", err)
		return
	}
	for _, n := range ns {
		note(kind+" "+n, del(n))
	}
}

// names adapts a typed list to its items' names; the list is nil on error.
func names(_ any, err error, name func(int) string, n func() int) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, n())
	for i := range out {
		out[i] = name(i)
	}
	return out, nil
}

// Remaining lists what is left of a session, as "Kind/name".
func Remaining(ctx context.Context, client kubernetes.Interface, namespace, clusterID string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: SelectorFor(clusterID)}
	var out []string
	deps, err := client.AppsV1().Deployments(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range deps.Items {
		out = append(out, "Deployment/"+x.Name)
	}
	rss, err := client.AppsV1().ReplicaSets(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range rss.Items {
		out = append(out, "ReplicaSet/"+x.Name)
	}
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelApp + "=" + clusterID + "," + LabelComponent + " in (jobmanager,taskmanager)"})
	if err != nil {
		return nil, err
	}
	for _, x := range pods.Items {
		out = append(out, "Pod/"+x.Name)
	}
	svcs, err := client.CoreV1().Services(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range svcs.Items {
		out = append(out, "Service/"+x.Name)
	}
	cms, err := client.CoreV1().ConfigMaps(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range cms.Items {
		out = append(out, "ConfigMap/"+x.Name)
	}
	secrets, err := client.CoreV1().Secrets(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	for _, x := range secrets.Items {
		out = append(out, "Secret/"+x.Name)
	}
	if _, err := client.CoordinationV1().Leases(namespace).Get(ctx, hakube.LeaseName(clusterID), metav1.GetOptions{}); err == nil {
		out = append(out, "Lease/"+hakube.LeaseName(clusterID))
	} else if !apierrors.IsNotFound(err) {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// Info is one session as list shows it.
type Info struct {
	ClusterID string
	Namespace string
	Replicas  int32 // desired JobManagers
	Ready     int32 // JobManager pods ready
	Image     string
	Created   time.Time
}

// List returns the sessions in namespace ("" for every namespace the
// client may list).
func List(ctx context.Context, client kubernetes.Interface, namespace string) ([]Info, error) {
	deps, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelType + "=" + TypeValue + "," + LabelComponent + "=jobmanager",
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions (Deployments labelled %s=%s): %w", LabelType, TypeValue, err)
	}
	var out []Info
	for _, d := range deps.Items {
		in := Info{ClusterID: d.Labels[LabelApp], Namespace: d.Namespace, Ready: d.Status.ReadyReplicas, Created: d.CreationTimestamp.Time}
		if d.Spec.Replicas != nil {
			in.Replicas = *d.Spec.Replicas
		}
		if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
			in.Image = cs[0].Image
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].ClusterID < out[j].ClusterID
	})
	return out, nil
}
