package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// binder is the tests' one-node scheduler: it binds every unscheduled pod
// that asks for the default scheduler to this node when the pod's resource
// requests fit in the node's free capacity, and otherwise marks it
// Unschedulable as kube-scheduler would.
type binder struct {
	client   kubernetes.Interface
	nodeName string
	capacity corev1.ResourceList
	log      *slog.Logger
}

func (b *binder) run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if err := b.once(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("binder", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *binder) once(ctx context.Context) error {
	pending, err := b.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector("spec.nodeName", ""),
			fields.OneTermEqualSelector("status.phase", string(corev1.PodPending)),
		).String(),
	})
	if err != nil || len(pending.Items) == 0 {
		return err
	}
	placed, err := b.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", b.nodeName).String(),
	})
	if err != nil {
		return err
	}
	used := corev1.ResourceList{}
	for i := range placed.Items {
		pod := &placed.Items[i]
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		add(used, requests(pod))
		add(used, corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")})
	}
	for i := range pending.Items {
		pod := &pending.Items[i]
		if pod.DeletionTimestamp != nil || (pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName) {
			continue
		}
		want := requests(pod)
		want[corev1.ResourcePods] = resource.MustParse("1")
		if short := insufficient(b.capacity, used, want); short != "" {
			b.unschedulable(ctx, pod, fmt.Sprintf("0/1 nodes are available: 1 Insufficient %s.", short))
			continue
		}
		err := b.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: b.nodeName},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("bind %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		if err == nil {
			add(used, want)
			b.log.Info("bound", "pod", pod.Namespace+"/"+pod.Name, "node", b.nodeName)
		}
	}
	return nil
}

// requests sums a pod's containers' requests (limits when no request is
// given, as the API server defaults them).
func requests(pod *corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		r := c.Resources.Requests
		if len(r) == 0 {
			r = c.Resources.Limits
		}
		add(sum, r)
	}
	return sum
}

func add(to, r corev1.ResourceList) {
	for name, q := range r {
		cur := to[name]
		cur.Add(q)
		to[name] = cur
	}
}

// insufficient names the first resource whose request does not fit.
func insufficient(capacity, used, want corev1.ResourceList) string {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods} {
		w, ok := want[name]
		if !ok {
			continue
		}
		free := capacity[name].DeepCopy()
		free.Sub(used[name])
		if w.Cmp(free) > 0 {
			return string(name)
		}
	}
	return ""
}

func (b *binder) unschedulable(ctx context.Context, pod *corev1.Pod, msg string) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == msg {
			return
		}
	}
	pod = pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: metav1.Now()}
	replaced := false
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			pod.Status.Conditions[i] = cond
			replaced = true
		}
	}
	if !replaced {
		pod.Status.Conditions = append(pod.Status.Conditions, cond)
	}
	if _, err := b.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
		b.log.Warn("mark unschedulable", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}
