// Package taskmanager is the TaskManager: it registers its slots with the
// JobManager, runs the subtasks deployed to it, serves the data exchange for
// their inputs and reports their states and metrics by heartbeat.
package taskmanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/sluice-dev/sluice/internal/blob"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/network"
	"github.com/sluice-dev/sluice/internal/processlog"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/internal/security/sealed"
	"github.com/sluice-dev/sluice/internal/transport"
)

// Options configure a TaskManager beyond its Config.
type Options struct {
	Config   *config.Config
	Security *transport.Security
	Logger   *slog.Logger
	// Stdout receives the output of print sinks.
	Stdout io.Writer
	// LocalOutput keeps the output of print sinks on Stdout only, without sending it to the
	// JobManager for GET /jobs/{id}/output: sluice local, whose Stdout is the user's already.
	LocalOutput bool
	// WorkDir holds the blob cache. When empty:
	// <process.taskmanager.working-dir>/taskmanager-<id>, else a temporary
	// directory removed when Run returns.
	WorkDir string
	// ID overrides taskmanager.resource-id.
	ID string
	// RPCServerOptions are added to the control-plane server (the service
	// ACL interceptor of internal security).
	RPCServerOptions []grpc.ServerOption
	// Logs are the process's log files (env.log.dir), which it serves to the
	// JobManager for GET /taskmanagers/{id}/logs; none when Logs.Dir is empty.
	Logs processlog.Files
}

// TaskManager is a running TaskManager.
type TaskManager struct {
	cfg *config.Config // the whole configuration: the TLS and security packages read theirs from it
	set Settings       // the TaskManager's own keys
	sec *transport.Security
	log *slog.Logger
	// logFiles are the process's log files, served to the JobManager.
	logFiles processlog.Files
	started  time.Time
	stdout   io.Writer
	id       string
	slots    int
	cache    *blob.Cache
	net      *network.Server

	// localOutput: print sinks' output is not sent to the JobManager (Options.LocalOutput).
	localOutput bool

	rpcAddr, dataAddr, metricsAddr string

	mu        sync.Mutex
	jm        controlpb.JobManagerClient
	jmConn    *grpc.ClientConn
	clusterID string
	blobAddr  string
	jobs      map[attemptKey]*jobRun

	sentDone atomic.Int64 // bytes sent by writers of ended tasks
	instance string       // random per process: see newInstanceID
	fatal    chan error   // connectLoop gave up: Run returns it
	rpcOpts  []grpc.ServerOption
	tempDir  string // removed when Run returns
	workDir  string // blobs and state backends' files
	ckptKey  *sealed.Key
	// rocksdbOnce: the TaskManager says once that rocksdb runs as pebble.
	rocksdbOnce sync.Once
	ready       chan struct{}
	// krb is the TaskManager's own Kerberos login (security.kerberos.login.*), nil when not
	// configured: connectors on this TaskManager get its login contexts' clients through
	// credentials (credentials.go).
	krb *kerberos.Login
	ctx context.Context
	wg  sync.WaitGroup
}

type attemptKey struct {
	job     string
	attempt int
}

// New builds a TaskManager; Run starts it.
func New(o Options) (*TaskManager, error) {
	if o.Config == nil {
		o.Config = config.New()
	}
	if o.Security == nil {
		o.Security = transport.Plaintext()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	set := SettingsFromConfig(o.Config)
	// Checked before anything starts; the tasks load it again when they seal.
	key, err := LoadCheckpointKey(o.Config)
	if err != nil {
		return nil, err
	}
	id := o.ID
	if id == "" {
		id = DefaultID(set)
	}
	dir, temporary, err := workDir(set.WorkingDir, o.WorkDir, id)
	if err != nil {
		return nil, err
	}
	store, err := blob.NewStore(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, err
	}
	tm := &TaskManager{
		cfg: o.Config, set: set, sec: o.Security, log: o.Logger.With("component", "taskmanager", "taskmanager", id),
		stdout: o.Stdout, localOutput: o.LocalOutput, id: id, slots: set.Slots,
		cache: blob.NewCache(store, o.Security.HTTPClient(transport.Blob, 5*time.Minute), id),
		jobs:  map[attemptKey]*jobRun{}, ready: make(chan struct{}), rpcOpts: o.RPCServerOptions,
		instance: newInstanceID(), fatal: make(chan error, 1), ckptKey: key, workDir: dir, logFiles: o.Logs, started: time.Now(),
	}
	if temporary {
		tm.tempDir = dir
	}
	tm.net = network.NewServer(network.ServerOptions{
		BufferSize:        set.BufferSize,
		CreditsPerChannel: set.CreditsPerChannel,
		Logger:            tm.log,
	})
	return tm, nil
}

// ID returns the TaskManager's resource id.
func (tm *TaskManager) ID() string { return tm.id }

// Ready is closed once the TaskManager listens (it may not be registered yet).
func (tm *TaskManager) Ready() <-chan struct{} { return tm.ready }

// DataAddress returns the address of the data exchange (after Ready).
func (tm *TaskManager) DataAddress() string { return tm.dataAddr }

// Run listens, registers with the JobManager and serves until ctx is done.
func (tm *TaskManager) Run(ctx context.Context) error {
	// Runs last: after every task ended and every listener closed, and
	// also when start-up fails.
	defer tm.removeTempDir()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tm.ctx = ctx
	// Logged in before any port is bound: a TaskManager whose connectors cannot reach their
	// Kerberos-secured systems says so at start-up, not at its first task.
	krb, err := kerberos.Start(ctx, tm.cfg, tm.log)
	if err != nil {
		return err
	}
	tm.krb = krb
	if krb != nil {
		tm.wg.Add(1)
		go func() {
			defer tm.wg.Done()
			krb.Run(ctx)
		}()
	}
	bind := tm.set.BindHost
	if bind == "0.0.0.0" || bind == "*" {
		bind = ""
	}
	dataL, err := tm.sec.Listen(ctx, transport.Data, net.JoinHostPort(bind, fmt.Sprint(tm.set.DataPort)))
	if err != nil {
		return config.KeyError("taskmanager.data.port", err)
	}
	rpcL, err := tm.sec.Listen(ctx, transport.RPC, net.JoinHostPort(bind, fmt.Sprint(tm.set.RPCPort)))
	if err != nil {
		dataL.Close()
		return config.KeyError("taskmanager.rpc.port", err)
	}
	metrics, err := tm.listenMetrics(ctx)
	if err != nil {
		dataL.Close()
		rpcL.Close()
		return err
	}
	metricsL := metrics.listener
	host := tm.set.Host
	tm.dataAddr = advertise(dataL.Addr(), host)
	tm.rpcAddr = advertise(rpcL.Addr(), host)
	tm.metricsAddr = advertise(metricsL.Addr(), host)

	gs := grpc.NewServer(append(tm.sec.GRPCServerOptions(), tm.rpcOpts...)...)
	controlpb.RegisterTaskManagerServer(gs, &rpcServer{tm: tm})
	msrv := &http.Server{Handler: metrics.handler, ReadHeaderTimeout: 10 * time.Second}

	// The servers are Run's: it stops them and waits for them to return.
	errc := make(chan error, 3)
	var servers sync.WaitGroup
	serve := func(f func() error) {
		servers.Add(1)
		go func() {
			defer servers.Done()
			errc <- f()
		}()
	}
	serve(func() error { return tm.net.Serve(ctx, dataL) })
	serve(func() error { return gs.Serve(rpcL) })
	serve(func() error { return msrv.Serve(metricsL) })
	tm.log.Info("taskmanager started", "slots", tm.slots, "data", tm.dataAddr, "rpc", tm.rpcAddr, "metrics", metrics.scheme+"://"+tm.metricsAddr+"/metrics", "metrics-bind", metricsL.Addr().String(), "metrics-security", metrics.security)
	close(tm.ready)

	tm.wg.Add(1)
	go tm.connectLoop(ctx)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	case runErr = <-tm.fatal:
	}
	cancel()
	tm.cancelAll()
	gs.Stop()
	_ = msrv.Close()
	tm.waitStopped(tm.set.ShutdownGrace)
	servers.Wait()
	tm.mu.Lock()
	if tm.jmConn != nil {
		tm.jmConn.Close()
	}
	tm.mu.Unlock()
	if errors.Is(runErr, grpc.ErrServerStopped) || errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// waitStopped waits for the tasks (already cancelled) and the registration loop to return, at
// most grace: a task that does not stop must not keep the process from exiting. Expressions
// stop at their next interrupt check, but a task can still be stuck, for instance in a write
// to a file system that hangs.
func (tm *TaskManager) waitStopped(grace time.Duration) {
	done := make(chan struct{})
	// Owned by the shutdown: when the grace period ends first, the process exits and takes it.
	go func() {
		tm.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		tm.log.Error("tasks did not stop within the shutdown grace period; exiting anyway", "taskmanager.shutdown.grace-period", grace, "tasks", tm.runningTasks())
	}
}

// awaitTasksEnded waits until every cancelled task has returned, so that the slots offered at
// the next registration are really free.
func (tm *TaskManager) awaitTasksEnded(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	logAt := time.Now().Add(10 * time.Second)
	for {
		running := tm.runningTasks()
		if len(running) == 0 {
			return
		}
		if time.Now().After(logAt) {
			tm.log.Warn("waiting for cancelled tasks to stop before registering again", "tasks", running)
			logAt = time.Now().Add(10 * time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// runningTasks names the tasks whose goroutines have not returned.
func (tm *TaskManager) runningTasks() []string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	var out []string
	for _, jr := range tm.jobs {
		for _, t := range jr.taskList() {
			out = append(out, fmt.Sprintf("job %s attempt %d vertex %d subtask %d", t.job, t.attempt, t.vertex, t.subtask))
		}
	}
	slices.Sort(out)
	return out
}

func advertise(a net.Addr, host string) string {
	_, port, _ := net.SplitHostPort(a.String())
	if host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// connectLoop registers with the JobManager and heartbeats; when the
// JobManager is lost (no successful heartbeat within heartbeat.timeout, or it
// no longer knows us) every task is cancelled and registration starts over.
func (tm *TaskManager) connectLoop(ctx context.Context) {
	defer tm.wg.Done()
	jmAddr := net.JoinHostPort(tm.set.JobManagerAddress, fmt.Sprint(tm.set.JobManagerPort))
	conn, err := grpc.NewClient(jmAddr, tm.sec.GRPCDialOptions()...)
	if err != nil {
		tm.log.Error("jobmanager address", "address", jmAddr, "err", err)
		return
	}
	tm.mu.Lock()
	tm.jmConn = conn
	tm.jm = controlpb.NewJobManagerClient(conn)
	tm.mu.Unlock()
	client := controlpb.NewJobManagerClient(conn)
	backoff := 200 * time.Millisecond
	// Flink's taskmanager.registration.timeout: a TaskManager that cannot
	// register (at start, or after losing the JobManager) within it exits,
	// so a misconfiguration is not an endless retry loop.
	timeout := tm.set.RegistrationTimeout
	unregisteredSince := time.Now()
	lastHint := ""
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := client.RegisterTaskManager(rctx, &controlpb.RegisterRequest{
			TaskmanagerId: tm.id, RpcAddress: tm.rpcAddr, DataAddress: tm.dataAddr,
			MetricsAddress: tm.metricsAddr, Slots: int32(tm.slots), Hostname: hostname(),
			InstanceId: tm.instance,
		})
		cancel()
		if err != nil {
			hint, permanent := registrationProblem(err, jmAddr, tm.sec.Secured(transport.RPC))
			if waited := time.Since(unregisteredSince); waited > timeout {
				tm.fatal <- fmt.Errorf("taskmanager %s could not register with the jobmanager at %s within taskmanager.registration.timeout (%s): %s", tm.id, jmAddr, timeout, hint)
				return
			}
			switch {
			case permanent && hint != lastHint:
				tm.log.Error("registration with jobmanager refused; retrying cannot fix this, so the taskmanager exits at taskmanager.registration.timeout unless it is fixed meanwhile",
					"jobmanager", jmAddr, "err", hint, "timeout", timeout)
			case permanent:
				tm.log.Debug("registration with jobmanager refused", "err", err)
			default:
				tm.log.Warn("registration with jobmanager failed; retrying", "jobmanager", jmAddr, "err", hint, "retry-in", backoff)
			}
			lastHint = hint
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		tm.mu.Lock()
		tm.clusterID, tm.blobAddr = resp.ClusterId, resp.BlobAddress
		tm.mu.Unlock()
		lastHint = ""
		tm.log.Info("registered with jobmanager", "jobmanager", jmAddr, "cluster-id", resp.ClusterId)
		tm.heartbeat(ctx, client, time.Duration(resp.HeartbeatIntervalMs)*time.Millisecond, time.Duration(resp.HeartbeatTimeoutMs)*time.Millisecond)
		tm.cancelAll()
		tm.awaitTasksEnded(ctx)
		unregisteredSince = time.Now()
	}
}

// heartbeat sends heartbeats until the JobManager is lost or ctx is done.
func (tm *TaskManager) heartbeat(ctx context.Context, client controlpb.JobManagerClient, interval, timeout time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if timeout <= 0 {
		timeout = 50 * time.Second
	}
	last := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, interval)
		resp, err := client.Heartbeat(hctx, tm.heartbeatRequest())
		cancel()
		switch {
		case err == nil && resp.Known:
			last = time.Now()
		case err == nil:
			tm.log.Warn("jobmanager no longer knows this taskmanager; cancelling tasks and registering again")
			return
		case time.Since(last) > timeout:
			tm.log.Warn("jobmanager lost: no heartbeat answer within heartbeat.timeout; cancelling tasks", "timeout", timeout, "err", err)
			return
		default:
			tm.log.Debug("heartbeat failed", "err", err)
		}
	}
}

func (tm *TaskManager) heartbeatRequest() *controlpb.HeartbeatRequest {
	req := &controlpb.HeartbeatRequest{TaskmanagerId: tm.id, InstanceId: tm.instance, Process: processStats(tm.started)}
	sent := tm.sentDone.Load()
	tm.mu.Lock()
	for _, jr := range tm.jobs {
		for _, t := range jr.taskList() {
			req.Tasks = append(req.Tasks, t.metricsProto())
			sent += t.bytesSent()
		}
	}
	tm.mu.Unlock()
	req.BytesSent = sent
	req.BytesReceived = tm.net.Stats().BytesReceived
	return req
}

// DefaultID is the resource id of a TaskManager when none is given:
// taskmanager.resource-id, else the host name and a random suffix.
func DefaultID(set Settings) string {
	if set.ResourceID != "" {
		return set.ResourceID
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%s", host, randomSuffix())
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
