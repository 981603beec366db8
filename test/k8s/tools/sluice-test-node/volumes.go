package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// volumeDir is a volume materialized on the host.
type volumeDir struct {
	path     string
	readOnly bool // Secret, ConfigMap and projected volumes are read-only, as on a kubelet
}

// file is one file of a volume: its path inside the volume, content and mode.
type file struct {
	path string
	data []byte
	mode os.FileMode
}

// materializeVolumes writes the pod's volumes under dir/volumes.
func (p *provider) materializeVolumes(ctx context.Context, pod *corev1.Pod, dir string) (map[string]volumeDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := map[string]volumeDir{}
	for _, v := range pod.Spec.Volumes {
		path := filepath.Join(dir, "volumes", v.Name)
		if v.EmptyDir != nil {
			if err := os.MkdirAll(path, 0o777); err != nil {
				return nil, err
			}
			out[v.Name] = volumeDir{path: path}
			continue
		}
		files, err := p.volumeFiles(ctx, pod, v)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if err := writeFiles(path, files); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		out[v.Name] = volumeDir{path: path, readOnly: true}
	}
	return out, nil
}

func (p *provider) volumeFiles(ctx context.Context, pod *corev1.Pod, v corev1.Volume) ([]file, error) {
	switch {
	case v.Secret != nil:
		return p.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, modeOr(v.Secret.DefaultMode, 0o644), v.Secret.Optional)
	case v.ConfigMap != nil:
		return p.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, modeOr(v.ConfigMap.DefaultMode, 0o644), v.ConfigMap.Optional)
	case v.Projected != nil:
		def := modeOr(v.Projected.DefaultMode, 0o644)
		var all []file
		for _, src := range v.Projected.Sources {
			var fs []file
			var err error
			switch {
			case src.Secret != nil:
				fs, err = p.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, def, src.Secret.Optional)
			case src.ConfigMap != nil:
				fs, err = p.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, def, src.ConfigMap.Optional)
			case src.DownwardAPI != nil:
				fs, err = downwardFiles(pod, src.DownwardAPI.Items, def)
			case src.ServiceAccountToken != nil:
				fs, err = p.tokenFile(ctx, pod, src.ServiceAccountToken, def)
			default:
				err = fmt.Errorf("a projected source other than secret, configMap, downwardAPI or serviceAccountToken is not supported by the test node")
			}
			if err != nil {
				return nil, err
			}
			all = append(all, fs...)
		}
		return all, nil
	case v.DownwardAPI != nil:
		return downwardFiles(pod, v.DownwardAPI.Items, modeOr(v.DownwardAPI.DefaultMode, 0o644))
	}
	return nil, fmt.Errorf("only secret, configMap, projected, downwardAPI and emptyDir volumes are supported by the test node")
}

func modeOr(m *int32, def os.FileMode) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return def
}

func (p *provider) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, def os.FileMode, optional *bool) ([]file, error) {
	s, err := p.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil, nil
		}
		return nil, fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	return keyFiles("secret "+ns+"/"+name, s.Data, items, def, optional)
}

func (p *provider) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, def os.FileMode, optional *bool) ([]file, error) {
	cm, err := p.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return nil, nil
		}
		return nil, fmt.Errorf("configmap %s/%s: %w", ns, name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configmap "+ns+"/"+name, data, items, def, optional)
}

// keyFiles selects a Secret's or ConfigMap's keys as the kubelet does:
// every key when items is empty, else the items with their paths and modes.
func keyFiles(what string, data map[string][]byte, items []corev1.KeyToPath, def os.FileMode, optional *bool) ([]file, error) {
	var out []file
	if len(items) == 0 {
		for k, v := range data {
			out = append(out, file{path: k, data: v, mode: def})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q", what, it.Key)
		}
		out = append(out, file{path: it.Path, data: v, mode: modeOr(it.Mode, def)})
	}
	return out, nil
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def os.FileMode) ([]file, error) {
	var out []file
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, fmt.Errorf("downward API file %s: only fieldRef is supported by the test node", it.Path)
		}
		var v string
		switch it.FieldRef.FieldPath {
		case "metadata.namespace":
			v = pod.Namespace
		case "metadata.name":
			v = pod.Name
		case "metadata.uid":
			v = string(pod.UID)
		case "spec.nodeName":
			v = pod.Spec.NodeName
		case "spec.serviceAccountName":
			v = pod.Spec.ServiceAccountName
		default:
			return nil, fmt.Errorf("downward API file %s: field %s is not supported by the test node", it.Path, it.FieldRef.FieldPath)
		}
		out = append(out, file{path: it.Path, data: []byte(v), mode: modeOr(it.Mode, def)})
	}
	return out, nil
}

// tokenFile asks the API server for a token of the pod's ServiceAccount,
// bound to the pod, as the kubelet does for a projected token volume.
func (p *provider) tokenFile(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, def os.FileMode) ([]file, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := p.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	return []file{{path: src.Path, data: []byte(tr.Status.Token), mode: def}}, nil
}

// writeFiles writes a read-only volume: files with their modes, then every
// directory made read-only so the pod cannot add or replace files.
func writeFiles(root string, files []file) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if f.path == "" || filepath.IsAbs(f.path) || strings.HasPrefix(filepath.Clean(f.path), "..") {
			return fmt.Errorf("invalid path %q in the volume", f.path)
		}
		path := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(path, f.mode.Perm()); err != nil {
			return err
		}
	}
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chmod(path, 0o555)
	})
}
