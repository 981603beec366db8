// Package application deploys an application cluster on Kubernetes
// (sluice run --target kubernetes-application, Flink's application mode):
// a session cluster whose JobManager runs one job, baked into the cluster's
// ConfigMap, under an id fixed by the cluster id, and removes the cluster
// when the job has ended.
package application

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/kube/session"
)

// JobKey is the job's key in the cluster's ConfigMap.
const JobKey = "application-job.json"

// Target is execution.target of an application cluster.
const Target = "kubernetes-application"

// Job is the job an application cluster runs.
type Job struct {
	Spec                  []byte            `json:"spec"`
	Params                map[string]string `json:"params,omitempty"`
	Parallelism           int               `json:"parallelism,omitempty"`
	Config                map[string]string `json:"config,omitempty"`
	SavepointPath         string            `json:"savepointPath,omitempty"`
	AllowNonRestoredState bool              `json:"allowNonRestoredState,omitempty"`
	// Owner is who deployed the cluster: the job's owner.
	Owner string `json:"owner"`
}

// JobID is the id of an application cluster's job: fixed by the cluster
// id, so a JobManager that takes over recognizes the job it recovered.
func JobID(clusterID string) string {
	sum := sha256.Sum256([]byte("sluice-application/" + clusterID))
	return hex.EncodeToString(sum[:16])
}

// Build returns the objects of an application cluster: a session's, with
// execution.target kubernetes-application and the job in the ConfigMap.
// The job's spec must not hold secrets: it is stored in a ConfigMap.
func Build(cfg *config.Config, job Job) (*session.Objects, error) {
	cfg = cfg.Clone()
	if err := cfg.Set("execution.target", Target); err != nil {
		return nil, err
	}
	objs, err := session.Build(cfg)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	objs.ConfigMap.Data[JobKey] = string(b)
	return objs, nil
}

// Load reads the job of the application cluster clusterID.
func Load(ctx context.Context, client kubernetes.Interface, namespace, clusterID string) (Job, error) {
	name := session.ConfigMapName(clusterID)
	cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return Job{}, fmt.Errorf("read the application's job from ConfigMap %s/%s: %w", namespace, name, err)
	}
	raw, ok := cm.Data[JobKey]
	if !ok {
		return Job{}, fmt.Errorf("ConfigMap %s/%s has no %s: this cluster was not deployed by sluice run --target %s", namespace, name, JobKey, Target)
	}
	var j Job
	if err := json.Unmarshal([]byte(raw), &j); err != nil {
		return Job{}, fmt.Errorf("ConfigMap %s/%s: %s: %w", namespace, name, JobKey, err)
	}
	return j, nil
}
