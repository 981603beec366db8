package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/sluice-dev/sluice/internal/ha"
)

// maxConflicts bounds the retries of a write that lost a race on the
// resourceVersion: each retry re-reads the leader annotation.
const maxConflicts = 10

// leaseHeld reads the Lease and reports whether it names this process and
// has not expired: the condition for claiming a ConfigMap another leader
// wrote last.
func (l *leadership) leaseHeld(ctx context.Context) (bool, string, error) {
	if l.ctx.Err() != nil || !l.isLeader() {
		return false, "", nil
	}
	s := l.s
	lease, err := s.client.CoordinationV1().Leases(s.set.Namespace).Get(ctx, LeaseName(s.set.ClusterID), metav1.GetOptions{})
	if err != nil {
		return false, "", fmt.Errorf("read the Lease %s/%s: %w", s.set.Namespace, LeaseName(s.set.ClusterID), err)
	}
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	if holder != l.id {
		return false, holder, nil
	}
	if lease.Spec.RenewTime != nil && lease.Spec.LeaseDurationSeconds != nil {
		expires := lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
		if time.Now().After(expires) {
			return false, holder, nil
		}
	}
	return true, holder, nil
}

// currentHolder names the Lease's holder, best effort, for errors.
func (l *leadership) currentHolder(ctx context.Context) string {
	s := l.s
	lease, err := s.client.CoordinationV1().Leases(s.set.Namespace).Get(ctx, LeaseName(s.set.ClusterID), metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == l.id {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// notLeader is ErrNotLeader naming who leads instead.
func notLeader(what, holder string) error {
	if holder == "" {
		return fmt.Errorf("%s: %w", what, ha.ErrNotLeader)
	}
	return fmt.Errorf("%s: %w (%s leads)", what, ha.ErrNotLeader, holder)
}

// objectOps are the calls a guarded write makes on one kind of object (a
// ConfigMap or a Secret).
type objectOps[T any] struct {
	kind   string
	get    func(ctx context.Context, name string) (T, error)
	create func(ctx context.Context, obj T) error
	update func(ctx context.Context, obj T) error
	fresh  func(name string) T
	meta   func(obj T) *metav1.ObjectMeta
}

func (l *leadership) configMapOps() objectOps[*corev1.ConfigMap] {
	s := l.s
	cms := s.client.CoreV1().ConfigMaps(s.set.Namespace)
	return objectOps[*corev1.ConfigMap]{
		kind: "ConfigMap",
		get: func(ctx context.Context, name string) (*corev1.ConfigMap, error) {
			return cms.Get(ctx, name, metav1.GetOptions{})
		},
		create: func(ctx context.Context, cm *corev1.ConfigMap) error {
			_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
			return err
		},
		update: func(ctx context.Context, cm *corev1.ConfigMap) error {
			_, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		},
		fresh: func(name string) *corev1.ConfigMap {
			return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.set.Namespace, Labels: HALabels(s.set.ClusterID)}, Data: map[string]string{}}
		},
		meta: func(cm *corev1.ConfigMap) *metav1.ObjectMeta { return &cm.ObjectMeta },
	}
}

func (l *leadership) secretOps() objectOps[*corev1.Secret] {
	s := l.s
	secrets := s.client.CoreV1().Secrets(s.set.Namespace)
	return objectOps[*corev1.Secret]{
		kind: "Secret",
		get: func(ctx context.Context, name string) (*corev1.Secret, error) {
			return secrets.Get(ctx, name, metav1.GetOptions{})
		},
		create: func(ctx context.Context, sec *corev1.Secret) error {
			_, err := secrets.Create(ctx, sec, metav1.CreateOptions{})
			return err
		},
		update: func(ctx context.Context, sec *corev1.Secret) error {
			_, err := secrets.Update(ctx, sec, metav1.UpdateOptions{})
			return err
		},
		fresh: func(name string) *corev1.Secret {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.set.Namespace,
				Labels: map[string]string{LabelApp: s.set.ClusterID, LabelType: TypeValue}}, Type: corev1.SecretTypeOpaque}
		},
		meta: func(sec *corev1.Secret) *metav1.ObjectMeta { return &sec.ObjectMeta },
	}
}

// update applies mutate to the ConfigMap name, creating it when absent,
// only while this process leads (see guardedUpdate).
func (l *leadership) update(ctx context.Context, name string, mutate func(data map[string]string) error) error {
	return guardedUpdate(ctx, l, l.configMapOps(), name, func(cm *corev1.ConfigMap) error {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		return mutate(cm.Data)
	})
}

// guardedUpdate applies mutate to the object name, creating it when
// absent, only while this process leads: the object's leader annotation
// must name it, or the Lease must (then the annotation is taken over). The
// update is conditional on the resourceVersion read, so a concurrent write
// of another leader makes it re-read and re-check.
func guardedUpdate[T any](ctx context.Context, l *leadership, ops objectOps[T], name string, mutate func(T) error) error {
	s := l.s
	what := "write " + ops.kind + " " + s.set.Namespace + "/" + name
	for range maxConflicts {
		if l.ctx.Err() != nil {
			return notLeader(what, l.currentHolder(ctx))
		}
		obj, err := ops.get(ctx, name)
		if apierrors.IsNotFound(err) {
			held, holder, err := l.leaseHeld(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if !held {
				return notLeader(what, holder)
			}
			obj = ops.fresh(name)
			setHolder(ops.meta(obj), l.id)
			if err := mutate(obj); err != nil {
				return err
			}
			err = ops.create(ctx, obj)
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if holder := annotationHolder(ops.meta(obj)); holder != l.id {
			held, leaseHolder, err := l.leaseHeld(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if !held {
				if leaseHolder == "" || leaseHolder == l.id {
					leaseHolder = holder
				}
				return notLeader(what, leaseHolder)
			}
			setHolder(ops.meta(obj), l.id)
		}
		if err := mutate(obj); err != nil {
			return err
		}
		err = ops.update(ctx, obj)
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	return fmt.Errorf("%s: %d conflicting concurrent updates in a row; another JobManager writes it", what, maxConflicts)
}

// Claim takes over the leader annotation of the cluster's ConfigMap and of
// every job's, so writes of the previous leader fail from now on.
func (l *leadership) Claim(ctx context.Context) error {
	s := l.s
	names := []string{ClusterConfigMapName(s.set.ClusterID)}
	list, err := s.client.CoreV1().ConfigMaps(s.set.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(HALabels(s.set.ClusterID)).String()})
	if err != nil {
		return fmt.Errorf("list the high-availability ConfigMaps of %s in %s: %w", s.set.ClusterID, s.set.Namespace, err)
	}
	for _, cm := range list.Items {
		if cm.Name != names[0] {
			names = append(names, cm.Name)
		}
	}
	for _, n := range names {
		if err := l.update(ctx, n, func(map[string]string) error { return nil }); err != nil {
			return err
		}
	}
	// The CA registry Secret exists only in automatic TLS mode (and only
	// then may the service account read it): claim it when it is there.
	reg := CARegistrySecretName(s.set.ClusterID)
	_, err = s.client.CoreV1().Secrets(s.set.Namespace).Get(ctx, reg, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		return nil
	case err != nil:
		return fmt.Errorf("read Secret %s/%s: %w", s.set.Namespace, reg, err)
	}
	return guardedUpdate(ctx, l, l.secretOps(), reg, func(*corev1.Secret) error { return nil })
}

// PublishLeader writes the leader's addresses into the cluster ConfigMap.
func (l *leadership) PublishLeader(ctx context.Context, info ha.LeaderInfo) error {
	info.Identity = l.id
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return l.update(ctx, ClusterConfigMapName(l.s.set.ClusterID), func(d map[string]string) error {
		d[addressKey] = string(b)
		return nil
	})
}

// PutJob writes the job's data under high-availability.storageDir and its
// pointer into the cluster ConfigMap.
func (l *leadership) PutJob(ctx context.Context, id string, data []byte) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	ptr, err := l.s.files.write(id, data)
	if err != nil {
		return err
	}
	return l.update(ctx, ClusterConfigMapName(l.s.set.ClusterID), func(d map[string]string) error {
		d[jobKeyPrefix+id] = ptr
		return nil
	})
}

// RemoveJob removes the job's pointer, its checkpoint ConfigMap and its
// file.
func (l *leadership) RemoveJob(ctx context.Context, id string) error {
	if err := checkJobID(id); err != nil {
		return err
	}
	s := l.s
	if err := l.update(ctx, ClusterConfigMapName(s.set.ClusterID), func(d map[string]string) error {
		delete(d, jobKeyPrefix+id)
		return nil
	}); err != nil {
		return err
	}
	if err := l.deleteGuarded(ctx, JobConfigMapName(s.set.ClusterID, id)); err != nil {
		return err
	}
	return s.files.remove(id)
}

// deleteGuarded deletes a ConfigMap this process holds the annotation of,
// on the condition of the resourceVersion it checked.
func (l *leadership) deleteGuarded(ctx context.Context, name string) error {
	s := l.s
	cms := s.client.CoreV1().ConfigMaps(s.set.Namespace)
	what := "delete ConfigMap " + s.set.Namespace + "/" + name
	for range maxConflicts {
		if l.ctx.Err() != nil {
			return notLeader(what, l.currentHolder(ctx))
		}
		cm, err := cms.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if annotationHolder(&cm.ObjectMeta) != l.id {
			// Take it over first (checks the Lease), then delete.
			if err := l.update(ctx, name, func(map[string]string) error { return nil }); err != nil {
				return err
			}
			continue
		}
		rv := cm.ResourceVersion
		err = cms.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	return fmt.Errorf("%s: %d conflicting concurrent updates in a row", what, maxConflicts)
}

// Jobs reads every stored job.
func (l *leadership) Jobs(ctx context.Context) (map[string][]byte, error) {
	s := l.s
	name := ClusterConfigMapName(s.set.ClusterID)
	cm, err := s.client.CoreV1().ConfigMaps(s.set.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", s.set.Namespace, name, err)
	}
	out := map[string][]byte{}
	keys := slicesSorted(cm.Data)
	for _, k := range keys {
		id, ok := strings.CutPrefix(k, jobKeyPrefix)
		if !ok {
			continue
		}
		data, err := s.files.read(id, cm.Data[k])
		if err != nil {
			return nil, err
		}
		out[id] = data
	}
	return out, nil
}

func slicesSorted(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkpointKey is Flink's key of a checkpoint pointer, zero-padded so
// keys sort by id.
func checkpointKey(id int64) string { return fmt.Sprintf("%s%019d", checkpointPrefix, id) }

// PutCheckpoint replaces the job's checkpoint pointer with cp. A pointer
// never goes backwards: an older id than the stored one is refused.
func (l *leadership) PutCheckpoint(ctx context.Context, job string, cp ha.CheckpointPointer) error {
	if err := checkJobID(job); err != nil {
		return err
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return l.update(ctx, JobConfigMapName(l.s.set.ClusterID, job), func(d map[string]string) error {
		for k := range d {
			idStr, ok := strings.CutPrefix(k, checkpointPrefix)
			if !ok {
				continue
			}
			if id, err := strconv.ParseInt(idStr, 10, 64); err == nil && id > cp.ID {
				return fmt.Errorf("checkpoint pointer of job %s: %d is already stored, refusing the older %d", job, id, cp.ID)
			}
			delete(d, k)
		}
		d[checkpointKey(cp.ID)] = string(b)
		return nil
	})
}

// LatestCheckpoint reads the job's checkpoint pointer.
func (l *leadership) LatestCheckpoint(ctx context.Context, job string) (ha.CheckpointPointer, bool, error) {
	s := l.s
	name := JobConfigMapName(s.set.ClusterID, job)
	cm, err := s.client.CoreV1().ConfigMaps(s.set.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ha.CheckpointPointer{}, false, nil
	}
	if err != nil {
		return ha.CheckpointPointer{}, false, fmt.Errorf("read ConfigMap %s/%s: %w", s.set.Namespace, name, err)
	}
	var best ha.CheckpointPointer
	found := false
	for k, v := range cm.Data {
		if !strings.HasPrefix(k, checkpointPrefix) {
			continue
		}
		var cp ha.CheckpointPointer
		if err := json.Unmarshal([]byte(v), &cp); err != nil {
			return ha.CheckpointPointer{}, false, fmt.Errorf("ConfigMap %s/%s: bad checkpoint pointer %s: %w", s.set.Namespace, name, k, err)
		}
		if !found || cp.ID > best.ID {
			best, found = cp, true
		}
	}
	return best, found, nil
}

// checkJobID keeps a job id usable in object names and file names.
func checkJobID(id string) error {
	if id == "" || len(id) > 32 {
		return errors.New("job id must have 1 to 32 characters")
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("job id %q: only lower-case letters and digits are allowed", id)
		}
	}
	return nil
}
