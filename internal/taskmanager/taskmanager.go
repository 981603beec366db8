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
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/sluice-dev/sluice/internal/blob"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/network"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/transport"
)

// Options configure a TaskManager beyond its Config.
type Options struct {
	Config   *config.Config
	Security *transport.Security
	Logger   *slog.Logger
	// Stdout receives the output of print sinks.
	Stdout io.Writer
	// WorkDir holds the blob cache. When empty:
	// <process.taskmanager.working-dir>/taskmanager-<id>, else a temporary
	// directory removed when Run returns.
	WorkDir string
	// ID overrides taskmanager.resource-id.
	ID string
	// RPCServerOptions are added to the control-plane server (the service
	// ACL interceptor of internal security).
	RPCServerOptions []grpc.ServerOption
}

// TaskManager is a running TaskManager.
type TaskManager struct {
	cfg    *config.Config
	sec    *transport.Security
	log    *slog.Logger
	stdout io.Writer
	id     string
	slots  int
	cache  *blob.Cache
	net    *network.Server

	rpcAddr, dataAddr, metricsAddr string

	mu        sync.Mutex
	jm        controlpb.JobManagerClient
	jmConn    *grpc.ClientConn
	clusterID string
	blobAddr  string
	jobs      map[attemptKey]*jobRun

	sentDone atomic.Int64 // bytes sent by writers of ended tasks
	rpcOpts  []grpc.ServerOption
	tempDir  string // removed when Run returns
	ready    chan struct{}
	ctx      context.Context
	wg       sync.WaitGroup
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
	id := o.ID
	if id == "" {
		id = DefaultID(o.Config)
	}
	dir, temporary, err := workDir(o.Config, o.WorkDir, id)
	if err != nil {
		return nil, err
	}
	store, err := blob.NewStore(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, err
	}
	tm := &TaskManager{
		cfg: o.Config, sec: o.Security, log: o.Logger.With("component", "taskmanager", "taskmanager", id),
		stdout: o.Stdout, id: id, slots: o.Config.Int("taskmanager.numberOfTaskSlots"),
		cache: blob.NewCache(store, o.Security.HTTPClient(transport.Blob, 5*time.Minute), id),
		jobs:  map[attemptKey]*jobRun{}, ready: make(chan struct{}), rpcOpts: o.RPCServerOptions,
	}
	if temporary {
		tm.tempDir = dir
	}
	tm.net = network.NewServer(network.ServerOptions{
		BufferSize:        int(o.Config.Bytes("taskmanager.network.memory.buffer-size")),
		CreditsPerChannel: o.Config.Int("taskmanager.network.memory.buffers-per-channel"),
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
	cfg := tm.cfg
	bind := cfg.String("taskmanager.bind-host")
	if bind == "0.0.0.0" || bind == "*" {
		bind = ""
	}
	dataL, err := tm.sec.Listen(ctx, transport.Data, net.JoinHostPort(bind, fmt.Sprint(cfg.Int("taskmanager.data.port"))))
	if err != nil {
		return fmt.Errorf("taskmanager.data.port: %w", err)
	}
	rpcL, err := tm.sec.Listen(ctx, transport.RPC, net.JoinHostPort(bind, fmt.Sprint(cfg.Int("taskmanager.rpc.port"))))
	if err != nil {
		dataL.Close()
		return fmt.Errorf("taskmanager.rpc.port: %w", err)
	}
	metrics, err := tm.listenMetrics(ctx)
	if err != nil {
		dataL.Close()
		rpcL.Close()
		return err
	}
	metricsL := metrics.listener
	host := cfg.String("taskmanager.host")
	tm.dataAddr = advertise(dataL.Addr(), host)
	tm.rpcAddr = advertise(rpcL.Addr(), host)
	tm.metricsAddr = advertise(metricsL.Addr(), host)

	gs := grpc.NewServer(append(tm.sec.GRPCServerOptions(), tm.rpcOpts...)...)
	controlpb.RegisterTaskManagerServer(gs, &rpcServer{tm: tm})
	msrv := &http.Server{Handler: metrics.handler, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 3)
	go func() { errc <- tm.net.Serve(ctx, dataL) }()
	go func() { errc <- gs.Serve(rpcL) }()
	go func() { errc <- msrv.Serve(metricsL) }()
	tm.log.Info("taskmanager started", "slots", tm.slots, "data", tm.dataAddr, "rpc", tm.rpcAddr, "metrics", metrics.scheme+"://"+tm.metricsAddr+"/metrics", "metrics-bind", metricsL.Addr().String(), "metrics-security", metrics.security)
	close(tm.ready)

	tm.wg.Add(1)
	go tm.connectLoop(ctx)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	tm.cancelAll()
	gs.Stop()
	_ = msrv.Close()
	tm.wg.Wait()
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
	jmAddr := net.JoinHostPort(tm.cfg.String("jobmanager.rpc.address"), fmt.Sprint(tm.cfg.Int("jobmanager.rpc.port")))
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
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := client.RegisterTaskManager(rctx, &controlpb.RegisterRequest{
			TaskmanagerId: tm.id, RpcAddress: tm.rpcAddr, DataAddress: tm.dataAddr,
			MetricsAddress: tm.metricsAddr, Slots: int32(tm.slots), Hostname: hostname(),
		})
		cancel()
		if err != nil {
			tm.log.Warn("registration with jobmanager failed; retrying", "jobmanager", jmAddr, "err", err, "retry-in", backoff)
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
		tm.log.Info("registered with jobmanager", "jobmanager", jmAddr, "cluster-id", resp.ClusterId)
		tm.heartbeat(ctx, client, time.Duration(resp.HeartbeatIntervalMs)*time.Millisecond, time.Duration(resp.HeartbeatTimeoutMs)*time.Millisecond)
		tm.cancelAll()
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
	req := &controlpb.HeartbeatRequest{TaskmanagerId: tm.id}
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
func DefaultID(cfg *config.Config) string {
	if id := cfg.String("taskmanager.resource-id"); id != "" {
		return id
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%s", host, randomSuffix())
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
