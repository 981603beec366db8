// Package kubernetes implements the JobManager's high-availability
// services on Kubernetes (high-availability.type: kubernetes): leader
// election through a coordination.k8s.io Lease with client-go's
// leaderelection, the leader's address, the submitted jobs and the latest
// checkpoint pointers in ConfigMaps, the jobs' specs and files under
// high-availability.storageDir.
//
// Objects, for a cluster id C (high-availability.cluster-id):
//
//	Lease     C-jobmanager-leader      the election
//	ConfigMap C-cluster-config-map     "address" (the leader) and jobGraph-<job> pointers
//	ConfigMap C-<job>-config-map       checkpointID-<n>: the job's latest completed checkpoint
//
// Each ConfigMap carries the leader annotation (Flink's
// control-plane.alpha.kubernetes.io/leader); a write is made only while the
// annotation names this process, and a new leader claims the annotation
// only while the Lease names it, so a deposed leader's late write fails
// (on the resourceVersion, or on the annotation it re-reads).
package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/sluice-dev/sluice/internal/ha"
)

// Labels and annotations of the high-availability objects. The labels let
// `sluice kubernetes-session stop` find and delete them.
const (
	LabelApp           = "app"
	LabelType          = "type"
	LabelConfigMapType = "configmap-type"
	TypeValue          = "sluice-native-kubernetes"
	ConfigMapTypeHA    = "high-availability"
	// LeaderAnnotation names the leader a ConfigMap's content belongs to.
	LeaderAnnotation = "control-plane.alpha.kubernetes.io/leader"

	addressKey       = "address"
	jobKeyPrefix     = "jobGraph-"
	checkpointPrefix = "checkpointID-"
)

// LeaseName is the name of the cluster's leader-election Lease.
func LeaseName(clusterID string) string { return clusterID + "-jobmanager-leader" }

// ClusterConfigMapName is the ConfigMap with the leader's address and the jobs.
func ClusterConfigMapName(clusterID string) string { return clusterID + "-cluster-config-map" }

// JobConfigMapName is the ConfigMap with a job's checkpoint pointer.
func JobConfigMapName(clusterID, job string) string { return clusterID + "-" + job + "-config-map" }

// HALabels are the labels of every high-availability ConfigMap of a cluster.
func HALabels(clusterID string) map[string]string {
	return map[string]string{LabelApp: clusterID, LabelType: TypeValue, LabelConfigMapType: ConfigMapTypeHA}
}

// Services are the high-availability services of one cluster on Kubernetes.
type Services struct {
	client kubernetes.Interface
	set    ha.Settings
	log    *slog.Logger
	files  *jobFiles
}

var _ ha.Services = (*Services)(nil)

// New returns the services of the cluster set.ClusterID in set.Namespace.
func New(client kubernetes.Interface, set ha.Settings, log *slog.Logger) (*Services, error) {
	if log == nil {
		log = slog.Default()
	}
	files, err := newJobFiles(set.StorageDir, set.ClusterID)
	if err != nil {
		return nil, err
	}
	return &Services{client: client, set: set, log: log.With("component", "high-availability"), files: files}, nil
}

// Campaign runs client-go's leader election on the cluster's Lease until
// this process leads (or ctx ends). The election keeps running in a
// goroutine owned by the returned leadership; Resign stops it.
func (s *Services) Campaign(ctx context.Context, identity string) (ha.Leadership, error) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeaseName(s.set.ClusterID), Namespace: s.set.Namespace},
		Client:     s.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	leaderCtx, lost := context.WithCancel(context.Background())
	started := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            s.set.ClusterID,
		LeaseDuration:   s.set.LeaseDuration,
		RenewDeadline:   s.set.RenewDeadline,
		RetryPeriod:     s.set.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(started) },
			OnStoppedLeading: lost,
		},
	})
	if err != nil {
		stop()
		lost()
		return nil, fmt.Errorf("leader election (high-availability.kubernetes.leader-election.*): %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer lost()
		le.Run(runCtx)
	}()
	s.log.Info("waiting for leadership", "lease", s.set.Namespace+"/"+LeaseName(s.set.ClusterID), "identity", identity)
	select {
	case <-started:
	case <-ctx.Done():
		stop()
		<-done
		return nil, ctx.Err()
	case <-done:
		stop()
		return nil, fmt.Errorf("leader election on Lease %s/%s ended before this JobManager led", s.set.Namespace, LeaseName(s.set.ClusterID))
	}
	s.log.Info("leadership granted", "identity", identity)
	l := &leadership{s: s, id: identity, ctx: leaderCtx, isLeader: le.IsLeader, stop: stop, done: done}
	// Owned by the leadership: logs the loss once (a leader that lost
	// must not go on unnoticed).
	go func() {
		<-leaderCtx.Done()
		s.log.Warn("leadership lost or given up", "identity", identity)
	}()
	return l, nil
}

// Leader returns the address the current leader published.
func (s *Services) Leader(ctx context.Context) (ha.LeaderInfo, bool, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.set.Namespace).Get(ctx, ClusterConfigMapName(s.set.ClusterID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ha.LeaderInfo{}, false, nil
	}
	if err != nil {
		return ha.LeaderInfo{}, false, fmt.Errorf("read the leader ConfigMap %s/%s: %w", s.set.Namespace, ClusterConfigMapName(s.set.ClusterID), err)
	}
	raw, ok := cm.Data[addressKey]
	if !ok {
		return ha.LeaderInfo{}, false, nil
	}
	var info ha.LeaderInfo
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		return ha.LeaderInfo{}, false, fmt.Errorf("leader ConfigMap %s/%s: bad %q: %w", s.set.Namespace, cm.Name, addressKey, err)
	}
	return info, info.RPCAddress != "", nil
}

// leaderRecord is the content of LeaderAnnotation.
type leaderRecord struct {
	HolderIdentity string `json:"holderIdentity"`
}

func annotationHolder(m *metav1.ObjectMeta) string {
	var r leaderRecord
	_ = json.Unmarshal([]byte(m.Annotations[LeaderAnnotation]), &r)
	return r.HolderIdentity
}

func setHolder(m *metav1.ObjectMeta, id string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	b, _ := json.Marshal(leaderRecord{HolderIdentity: id})
	m.Annotations[LeaderAnnotation] = string(b)
}

// leadership is this process's term as the leader.
type leadership struct {
	s   *Services
	id  string
	ctx context.Context
	// isLeader is the elector's own view (its last observed Lease).
	isLeader func() bool
	stop     context.CancelFunc
	done     chan struct{}
	once     sync.Once
}

var _ ha.Leadership = (*leadership)(nil)

func (l *leadership) Context() context.Context { return l.ctx }

// Resign stops the election and releases the Lease (ReleaseOnCancel).
func (l *leadership) Resign() {
	l.once.Do(func() {
		l.stop()
		<-l.done
	})
}

// LeaderRetriever returns a function that reads the leader's RPC address
// from the cluster's ConfigMap, for TaskManagers (which have no storage
// directory and never lead).
func LeaderRetriever(client kubernetes.Interface, set ha.Settings) func(ctx context.Context) (string, error) {
	s := &Services{client: client, set: set, log: slog.Default()}
	return func(ctx context.Context) (string, error) {
		info, ok, err := s.Leader(ctx)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("no JobManager leads cluster %s yet (ConfigMap %s/%s has no leader address)", set.ClusterID, set.Namespace, ClusterConfigMapName(set.ClusterID))
		}
		return info.RPCAddress, nil
	}
}
