package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/ha"
	hakube "github.com/sluice-dev/sluice/internal/ha/kubernetes"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/kube"
	"github.com/sluice-dev/sluice/internal/kube/application"
	"github.com/sluice-dev/sluice/internal/kube/resourcemanager"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
)

// nativeJobManager is what a JobManager needs from Kubernetes: its
// leadership under high availability, and its resource manager when it was
// deployed natively. Both are nil in standalone mode.
type nativeJobManager struct {
	client     kubernetes.Interface
	leadership ha.Leadership
}

// campaign waits, under high availability, until this JobManager leads
// its cluster, before anything binds a port: a standby only waits. In
// automatic TLS mode it then takes the cluster CA shared by the replicas.
func campaign(ctx context.Context, cfg *config.Config, workDir string, log *slog.Logger) (*nativeJobManager, error) {
	set, err := ha.SettingsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	n := &nativeJobManager{}
	if !set.Enabled() && !resourcemanager.Enabled(cfg) {
		return n, nil
	}
	if n.client, err = kube.NewClient(cfg); err != nil {
		return nil, err
	}
	if !set.Enabled() {
		return n, nil
	}
	// In a pod the configured address is the Service's, shared by every
	// replica: the leader publishes its own.
	if ip := os.Getenv("POD_IP"); ip != "" {
		if err := cfg.Set("jobmanager.rpc.address", ip); err != nil {
			return nil, err
		}
	}
	svc, err := hakube.New(n.client, set, log)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	if n.leadership, err = svc.Campaign(ctx, host+"-"+hex.EncodeToString(b)); err != nil {
		return nil, err
	}
	if internaltls.ModeOf(cfg) == internaltls.Auto {
		dir := cfg.String("security.ssl.internal.auto.dir")
		if dir == "" {
			dir = filepath.Join(workDir, "cluster-ca")
		}
		if err := hakube.ShareClusterCA(ctx, n.client, set.Namespace, set.ClusterID, dir); err != nil {
			n.leadership.Resign()
			return nil, err
		}
	}
	return n, nil
}

// resign gives leadership up, if held.
func (n *nativeJobManager) resign() {
	if n.leadership != nil {
		n.leadership.Resign()
	}
}

// resourceManager builds the Kubernetes resource manager of a natively
// deployed JobManager; nil otherwise.
func (n *nativeJobManager) resourceManager(ctx context.Context, cfg *config.Config, sec *internaltls.JobManager, log *slog.Logger) (jobmanager.ResourceManager, error) {
	if !resourcemanager.Enabled(cfg) {
		return nil, nil
	}
	var tokens resourcemanager.JoinTokens
	if sec.Mode == internaltls.Auto {
		tokens = func(ttl time.Duration) (string, error) {
			t, err := sec.NewJoinToken(ttl, 0, true)
			if err != nil {
				return "", err
			}
			return t.String(), nil
		}
	}
	rm, err := resourcemanager.FromConfig(ctx, n.client, cfg, tokens, log)
	if err != nil {
		return nil, err
	}
	return rm, nil
}

// taskManagerLeader, under high availability, points cfg at the leading
// JobManager (waiting for one up to taskmanager.registration.timeout) and
// returns how the TaskManager finds later leaders; nil without HA.
func taskManagerLeader(ctx context.Context, cfg *config.Config, log *slog.Logger) (func(context.Context) (string, error), error) {
	set, err := ha.SettingsFromConfig(cfg)
	if err != nil || !set.Enabled() {
		return nil, err
	}
	client, err := kube.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	leader := hakube.LeaderRetriever(client, set)
	timeout := cfg.Duration("taskmanager.registration.timeout")
	deadline := time.Now().Add(timeout)
	for {
		addr, err := leader(ctx)
		if err == nil {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("the leader's published address %q: %w", addr, err)
			}
			if _, err := strconv.Atoi(port); err != nil {
				return nil, fmt.Errorf("the leader's published address %q: bad port", addr)
			}
			if err := cfg.Set("jobmanager.rpc.address", host); err != nil {
				return nil, err
			}
			if err := cfg.Set("jobmanager.rpc.port", port); err != nil {
				return nil, err
			}
			log.Info("found the leading jobmanager (high-availability)", "jobmanager", addr)
			return leader, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leading JobManager found within taskmanager.registration.timeout (%s): %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// runApplication submits an application cluster's job once the
// JobManager is ready (leading, with the recovered jobs known), waits for
// it to end and then, with execution.shutdown-on-application-finish,
// deletes the JobManager Deployment: the cluster goes with it.
func (n *nativeJobManager) runApplication(ctx context.Context, cfg *config.Config, jm *jobmanager.JobManager, log *slog.Logger) {
	if cfg.String("execution.target") != application.Target {
		return
	}
	select {
	case <-jm.Ready():
	case <-ctx.Done():
		return
	}
	ns, id := cfg.String("kubernetes.namespace"), cfg.String("kubernetes.cluster-id")
	job, err := application.Load(ctx, n.client, ns, id)
	if err != nil {
		log.Error("application cluster: cannot load its job", "err", err)
		return
	}
	jobID := application.JobID(id)
	err = jm.SubmitApplication(jobmanager.Submission{
		Spec: job.Spec, Params: job.Params, Parallelism: job.Parallelism, Config: job.Config,
		SavepointPath: job.SavepointPath, AllowNonRestoredState: job.AllowNonRestoredState,
		ACL: authz.JobACL{Owner: job.Owner},
	}, jobID)
	if err != nil {
		log.Error("application cluster: its job was refused", "job", jobID, "err", err)
		return
	}
	state, cause, err := jm.Wait(ctx, jobID)
	if err != nil {
		return // the JobManager stops: the next leader takes the job over
	}
	log.Info("application job ended", "job", jobID, "state", state, "err", cause)
	if !cfg.Bool("execution.shutdown-on-application-finish") {
		return
	}
	// Under high availability the result goes first: a Deployment deleted
	// before it would race the write (which recreates the ConfigMap), and
	// a leader dying in between would leave the job to be run again.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = jm.WaitResultRecorded(rctx, jobID)
	cancel()
	if err != nil {
		log.Error("application cluster: not shutting down before the job's result is recorded; the next leader finishes the job's clean-up", "err", err)
		return
	}
	log.Info("application cluster shutting down (execution.shutdown-on-application-finish): deleting its JobManager Deployment", "deployment", ns+"/"+id)
	bg := metav1.DeletePropagationBackground
	if err := n.client.AppsV1().Deployments(ns).Delete(ctx, id, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		log.Error("application cluster: cannot delete its Deployment (the JobManager's service account needs delete on its Deployment); delete the cluster with sluice kubernetes-session stop", "err", err)
	}
	// The high-availability ConfigMaps have no owner: they would outlive it.
	cms, err := n.client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(hakube.HALabels(id)).String()})
	if err != nil {
		log.Warn("application cluster: cannot list its high-availability ConfigMaps", "err", err)
		return
	}
	for _, cm := range cms.Items {
		if err := n.client.CoreV1().ConfigMaps(ns).Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			log.Warn("application cluster: cannot delete a high-availability ConfigMap", "configmap", cm.Name, "err", err)
		}
	}
}
