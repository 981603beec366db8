package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/config"
)

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443"}
- name: b
  cluster: {server: "https://b.example:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx-a
  context: {cluster: a, user: u}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`

func TestRESTConfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod
	dir := t.TempDir()
	file := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(file, []byte(twoContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		defines []string
		host    string
	}{
		{[]string{"kubernetes.config.file=" + file}, "https://a.example:6443"},
		{[]string{"kubernetes.config.file=" + file, "kubernetes.context=ctx-b"}, "https://b.example:6443"},
	} {
		cfg, err := config.Load("", tc.defines)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := RESTConfig(cfg)
		if err != nil {
			t.Fatalf("%v: %v", tc.defines, err)
		}
		if rc.Host != tc.host {
			t.Errorf("%v: host %s, want %s", tc.defines, rc.Host, tc.host)
		}
	}
	// $KUBECONFIG is the default kubeconfig when the key is unset.
	t.Setenv("KUBECONFIG", file)
	rc, err := RESTConfig(config.New())
	if err != nil || rc.Host != "https://a.example:6443" {
		t.Errorf("from $KUBECONFIG: %v, %v", rc, err)
	}
	for _, tc := range []struct {
		defines []string
		want    string
	}{
		{[]string{"kubernetes.config.file=" + filepath.Join(dir, "missing")}, "kubernetes.config.file"},
		{[]string{"kubernetes.config.file=" + file, "kubernetes.context=nope"}, "kubernetes.context"},
	} {
		cfg, _ := config.Load("", tc.defines)
		if _, err := RESTConfig(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.defines, err, tc.want)
		}
	}
}
