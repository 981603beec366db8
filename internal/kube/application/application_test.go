package application

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/kube/session"
)

func TestBuildBakesTheJobIn(t *testing.T) {
	cfg := config.New()
	for k, v := range map[string]string{"kubernetes.cluster-id": "wc", "kubernetes.namespace": "jobs"} {
		if err := cfg.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	job := Job{Spec: []byte("name: wc\n"), Params: map[string]string{"input": "/in"}, Parallelism: 4, Owner: "alice"}
	objs, err := Build(cfg, job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(objs.ConfigMap.Data[session.ConfigFile], "kubernetes-application") {
		t.Errorf("config.yaml does not set execution.target kubernetes-application:\n%s", objs.ConfigMap.Data[session.ConfigFile])
	}
	client := fake.NewClientset()
	if _, err := client.CoreV1().ConfigMaps("jobs").Create(context.Background(), objs.ConfigMap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := Load(context.Background(), client, "jobs", "wc")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Spec) != string(job.Spec) || got.Params["input"] != "/in" || got.Parallelism != 4 || got.Owner != "alice" {
		t.Fatalf("Load = %+v", got)
	}
	if cfg.String("execution.target") != "" {
		t.Error("Build changed the caller's configuration")
	}
}

func TestJobIDFixedByClusterID(t *testing.T) {
	a, b := JobID("wc"), JobID("wc")
	if a != b || len(a) != 32 || JobID("other") == a {
		t.Fatalf("JobID: %q %q %q", a, b, JobID("other"))
	}
}
