package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// resolveEnv computes a container's environment as the kubelet does:
// envFrom first, then env in order, $(VAR) expanded from what came
// before, valueFrom resolved (secretKeyRef, configMapKeyRef, fieldRef
// including status.podIP, which is 127.0.0.1 here, resourceFieldRef).
// virtual-kubelet's own resolution is off (it cannot resolve status.podIP
// before the pod runs). A missing Secret or ConfigMap is a NotFound error,
// which the caller retries.
func (p *provider) resolveEnv(ctx context.Context, pod *corev1.Pod, c corev1.Container) ([]corev1.EnvVar, error) {
	var out []corev1.EnvVar
	vars := map[string]string{}
	set := func(name, value string) {
		vars[name] = value
		for i := range out {
			if out[i].Name == name {
				out[i].Value = value
				return
			}
		}
		out = append(out, corev1.EnvVar{Name: name, Value: value})
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := p.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom configmap %s: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := p.client.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vars))
			continue
		}
		v, skip, err := p.valueFrom(ctx, pod, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			set(e.Name, v)
		}
	}
	return out, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

func (p *provider) valueFrom(ctx context.Context, pod *corev1.Pod, c corev1.Container, src *corev1.EnvVarSource) (value string, skip bool, err error) {
	switch {
	case src.SecretKeyRef != nil:
		r := src.SecretKeyRef
		s, err := p.client.CoreV1().Secrets(pod.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(r.Optional) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("secret %s: %w", r.Name, err)
		}
		v, ok := s.Data[r.Key]
		if !ok {
			if isTrue(r.Optional) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("secret %s has no key %q", r.Name, r.Key)
		}
		return string(v), false, nil
	case src.ConfigMapKeyRef != nil:
		r := src.ConfigMapKeyRef
		cm, err := p.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && isTrue(r.Optional) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("configmap %s: %w", r.Name, err)
		}
		v, ok := cm.Data[r.Key]
		if !ok {
			if isTrue(r.Optional) {
				return "", true, nil
			}
			return "", false, fmt.Errorf("configmap %s has no key %q", r.Name, r.Key)
		}
		return v, false, nil
	case src.FieldRef != nil:
		v, err := fieldValue(pod, src.FieldRef.FieldPath)
		return v, false, err
	case src.ResourceFieldRef != nil:
		r := src.ResourceFieldRef
		name, isLimit := strings.CutPrefix(r.Resource, "limits.")
		if !isLimit {
			name = strings.TrimPrefix(r.Resource, "requests.")
		}
		list := c.Resources.Requests
		if isLimit {
			list = c.Resources.Limits
		}
		q, ok := list[corev1.ResourceName(name)]
		if !ok {
			return "", false, fmt.Errorf("resourceFieldRef %s: not set on the container", r.Resource)
		}
		if name == string(corev1.ResourceCPU) {
			return fmt.Sprint((q.MilliValue() + 999) / 1000), false, nil // whole CPUs, rounded up, as the kubelet
		}
		return fmt.Sprint(q.Value()), false, nil
	}
	return "", false, fmt.Errorf("unsupported valueFrom")
}

// fieldValue resolves a downward-API field of the pod.
func fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.hostIP", "status.podIPs", "status.hostIPs":
		return "127.0.0.1", nil // every pod shares the host's loopback here
	}
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	return "", fmt.Errorf("field %s is not supported by the test node", path)
}
