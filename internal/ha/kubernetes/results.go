package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/internal/ha"
)

const (
	// jobResultPrefix keys a job's result in the cluster ConfigMap.
	jobResultPrefix = "jobResult-"
	// maxJobResults bounds the results kept in the cluster ConfigMap (a
	// ConfigMap holds at most 1 MiB): the oldest go first. A job whose
	// result was dropped has long been forgotten by the store too.
	maxJobResults = 200
	// maxCauseLen bounds a failure cause kept in a result.
	maxCauseLen = 1024
)

// PutJobResult writes the job's result and removes its stored submission
// in one update of the cluster ConfigMap, so no successor sees the job
// without seeing its result; then it deletes the job's checkpoint pointer
// and its file. A leader that dies in between leaves only garbage, which
// its successor removes (startLeading) without running the job.
func (l *leadership) PutJobResult(ctx context.Context, r ha.JobResult) error {
	if err := checkJobID(r.ID); err != nil {
		return err
	}
	if len(r.Cause) > maxCauseLen {
		r.Cause = r.Cause[:maxCauseLen] + "…"
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s := l.s
	if err := l.update(ctx, ClusterConfigMapName(s.set.ClusterID), func(d map[string]string) error {
		d[jobResultPrefix+r.ID] = string(b)
		delete(d, jobKeyPrefix+r.ID)
		pruneResults(d)
		return nil
	}); err != nil {
		return err
	}
	if err := l.deleteGuarded(ctx, JobConfigMapName(s.set.ClusterID, r.ID)); err != nil {
		return err
	}
	return s.files.remove(r.ID)
}

// pruneResults drops the oldest results beyond maxJobResults.
func pruneResults(d map[string]string) {
	type entry struct {
		key string
		r   ha.JobResult
	}
	var all []entry
	for k, v := range d {
		if !strings.HasPrefix(k, jobResultPrefix) {
			continue
		}
		var r ha.JobResult
		_ = json.Unmarshal([]byte(v), &r)
		all = append(all, entry{k, r})
	}
	if len(all) <= maxJobResults {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].r.Ended.Before(all[j].r.Ended) })
	for _, e := range all[:len(all)-maxJobResults] {
		delete(d, e.key)
	}
}

// JobResults reads the recorded results.
func (l *leadership) JobResults(ctx context.Context) (map[string]ha.JobResult, error) {
	s := l.s
	name := ClusterConfigMapName(s.set.ClusterID)
	cm, err := s.client.CoreV1().ConfigMaps(s.set.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]ha.JobResult{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", s.set.Namespace, name, err)
	}
	out := map[string]ha.JobResult{}
	for k, v := range cm.Data {
		id, ok := strings.CutPrefix(k, jobResultPrefix)
		if !ok {
			continue
		}
		var r ha.JobResult
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: bad job result %s: %w", s.set.Namespace, name, k, err)
		}
		r.ID = id
		out[id] = r
	}
	return out, nil
}
