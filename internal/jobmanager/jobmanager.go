// Package jobmanager is the JobManager: it accepts jobs over REST, stores
// their artifacts in the blob store, places their subtasks on TaskManager
// slots over the control plane, tracks task states, detects lost
// TaskManagers by heartbeat timeout and restarts or fails jobs.
package jobmanager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/sluice-dev/sluice/internal/blob"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/processlog"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
	"github.com/sluice-dev/sluice/internal/security/kerberos"
	"github.com/sluice-dev/sluice/internal/transport"
)

// Version is reported by /overview and /config.
var Version = "0.1.0-dev"

// Options configure a JobManager beyond its Config.
type Options struct {
	Config   *config.Config
	Security *transport.Security
	Logger   *slog.Logger
	// WorkDir holds the blob store; a temporary directory, removed when
	// Run returns, when empty (see WorkDir).
	WorkDir string
	// RemoveWorkDir removes WorkDir when Run returns: the caller created
	// it as a temporary directory.
	RemoveWorkDir bool
	// ClusterID is the cluster's id (from the internal certificates when
	// they carry identities); generated when empty.
	ClusterID string
	// RPCServerOptions are added to the control-plane gRPC server (the
	// internal-security interceptors).
	RPCServerOptions []grpc.ServerOption
	// RegisterRPC registers extra services on the control-plane server
	// (the automatic-mode bootstrap).
	RegisterRPC func(*grpc.Server)
	// Internal is the internal security, for the identity admin endpoints
	// (join tokens, revocation); nil when internal TLS is off or the
	// caller manages it.
	Internal *internaltls.JobManager
	// Reloaders are reloaded by POST /admin/reload beside the REST
	// API's own (the internal TLS material).
	Reloaders []Reloader
	// Logs are the process's log files (env.log.dir), for GET
	// /jobmanager/logs; none when Logs.Dir is empty.
	Logs processlog.Files
}

// JobManager is a running JobManager.
type JobManager struct {
	cfg       *config.Config // the whole configuration: jobs start from it, /jobmanager/config shows it
	set       Settings       // the JobManager's own keys
	sec       *transport.Security
	log       *slog.Logger
	clusterID string
	started   time.Time // for the uptime of GET /jobmanager/metrics
	logFiles  processlog.Files
	blobs     *blob.Store

	hbInterval, hbTimeout time.Duration

	mu   sync.Mutex
	tms  map[string]*taskManager
	jobs map[string]*job
	// slotFreed is signalled (closed and replaced) when slots become free
	// or a TaskManager registers, to wake jobs waiting for resources.
	slotFreed chan struct{}

	rpcAddr, blobAddr string
	listeners         []Listener
	restAddrs         map[string]string // listener name -> bound address
	rpcOpts           []grpc.ServerOption
	registerRPC       func(*grpc.Server)
	ready             chan struct{}
	extraReloaders    []Reloader
	// Set by Run before any port is bound, read-only afterwards.
	restSec  *restSecurity
	krb      *kerberos.Login
	reloads  reloadStatus
	logs     *logRing
	metrics  *jmMetrics
	internal *internaltls.JobManager
	bg       sync.WaitGroup // every goroutine the JobManager starts (background.go)
	bgMu     sync.Mutex
	bgClosed bool
	ctx      context.Context

	// Lifecycle (jobstore.go, shutdown.go).
	workDir       string
	removeWorkDir bool
	jobExpiration time.Duration
	jobCapacity   int
	// blobMu is held while a submission stores its blobs and registers
	// its job, and while unused blobs are collected.
	blobMu sync.Mutex
}

// New builds a JobManager; Run starts it.
func New(o Options) (*JobManager, error) {
	if o.Config == nil {
		o.Config = config.New()
	}
	if o.Security == nil {
		o.Security = transport.Plaintext()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	set, err := SettingsFromConfig(o.Config)
	if err != nil {
		return nil, err
	}
	dir, removeDir := o.WorkDir, o.RemoveWorkDir
	if dir == "" {
		if dir, removeDir, err = WorkDir(set.WorkingDir, ""); err != nil {
			return nil, err
		}
	}
	store, err := blob.NewStore(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, err
	}
	logs := newLogRing(1000)
	logger := slog.New(teeHandler{o.Logger.Handler(), slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})})
	jm := &JobManager{
		started:        time.Now(),
		logFiles:       o.Logs,
		logs:           logs,
		cfg:            o.Config,
		set:            set,
		sec:            o.Security,
		log:            logger.With("component", "jobmanager"),
		clusterID:      o.ClusterID,
		rpcOpts:        o.RPCServerOptions,
		registerRPC:    o.RegisterRPC,
		extraReloaders: o.Reloaders,
		blobs:          store,
		hbInterval:     set.HeartbeatInterval,
		hbTimeout:      set.HeartbeatTimeout,
		tms:            map[string]*taskManager{},
		jobs:           map[string]*job{},
		slotFreed:      make(chan struct{}),
		ready:          make(chan struct{}),

		workDir: dir, removeWorkDir: removeDir,
		jobExpiration: set.JobExpiration, jobCapacity: set.JobCapacity,
		listeners: set.Listeners,
	}
	if jm.clusterID == "" {
		jm.clusterID = newID(8)
	}
	jm.metrics = newJMMetrics(jm)
	if o.Internal != nil {
		jm.internal = o.Internal
		o.Internal.SetLiveCheck(jm.TaskManagerLive)
	}
	return jm, nil
}

// ClusterID returns the id of this cluster.
func (jm *JobManager) ClusterID() string { return jm.clusterID }

// RPCAddress returns the address the control plane listens on (after Ready).
func (jm *JobManager) RPCAddress() string { return jm.rpcAddr }

// RESTAddress returns the address of the first REST listener (after Ready).
func (jm *JobManager) RESTAddress() string { return jm.restAddrs[jm.listeners[0].Name] }

// RESTAddresses returns the bound address of every REST listener by name.
func (jm *JobManager) RESTAddresses() map[string]string { return jm.restAddrs }

// Ready is closed once every listener is open.
func (jm *JobManager) Ready() <-chan struct{} { return jm.ready }

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run opens the RPC, blob and REST listeners and serves until ctx is done,
// then shuts down gracefully (see shutdown).
func (jm *JobManager) Run(parent context.Context) error {
	// The REST listeners stop with parent; the control plane, the blob
	// server and calls to TaskManagers go on until shutdown has cancelled
	// the jobs.
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	// Also on a failed start-up: what was started ends with ctx.
	defer jm.waitBackground()
	defer cancel()
	restCtx, stopREST := context.WithCancel(parent)
	defer stopREST()
	defer jm.removeTempWorkDir()
	jm.ctx = ctx
	cfg := jm.cfg

	// Everything the REST API needs is built and validated before any
	// port is bound, so a bad setting never leaves half a JobManager
	// listening.
	rsec, err := newRESTSecurity(cfg, jm.set, jm.extraReloaders, jm.log)
	if err != nil {
		return err
	}
	// Its watchers and the audit log's closer end with ctx, which any
	// return below cancels.
	rsec.run(ctx, jm.spawn)
	krb, err := kerberos.Start(ctx, cfg, jm.log)
	if err != nil {
		return err
	}
	if krb != nil {
		jm.spawn(func() { krb.Run(ctx) })
	}
	jm.restSec, jm.krb = rsec, krb
	// Start-up loaded everything: the first "reload", as Prometheus
	// counts its initial load.
	jm.reloads.record(true, time.Now())
	rest := jm.newREST(rsec)
	handlers := make([]http.Handler, len(jm.listeners))
	for i, l := range jm.listeners {
		handlers[i] = rest.buildHandlerChain(l)
	}

	rpcL, err := jm.sec.Listen(ctx, transport.RPC, net.JoinHostPort(bindHost(jm.set.BindHost), fmt.Sprint(jm.set.RPCPort)))
	if err != nil {
		return config.KeyError("jobmanager.rpc.port", err)
	}
	blobL, err := jm.sec.Listen(ctx, transport.Blob, net.JoinHostPort(bindHost(jm.set.BindHost), fmt.Sprint(jm.set.BlobPort)))
	if err != nil {
		rpcL.Close()
		return config.KeyError("blob.server.port", err)
	}
	jm.restAddrs = map[string]string{}
	var restLs []net.Listener
	closeAll := func() {
		rpcL.Close()
		blobL.Close()
		for _, l := range restLs {
			l.Close()
		}
	}
	for _, l := range jm.listeners {
		ln, err := rsec.listen(ctx, jm.sec, l)
		if err != nil {
			closeAll()
			return fmt.Errorf("REST listener %q: %w", l.Name, err)
		}
		restLs = append(restLs, ln)
		jm.restAddrs[l.Name] = ln.Addr().String()
	}
	jm.rpcAddr = advertise(rpcL.Addr(), jm.set.RPCAddress)
	jm.blobAddr = advertise(blobL.Addr(), jm.set.RPCAddress)

	gs := grpc.NewServer(append(jm.sec.GRPCServerOptions(), jm.rpcOpts...)...)
	controlpb.RegisterJobManagerServer(gs, &rpcServer{jm: jm})
	if jm.registerRPC != nil {
		jm.registerRPC(gs)
	}
	errc := make(chan error, 2+len(restLs))
	jm.spawn(func() { errc <- gs.Serve(rpcL) })
	jm.spawn(func() { errc <- blob.NewServer(jm.blobs, jm.log, blobAccess{jm}).Serve(ctx, blobL) })
	for i, l := range jm.listeners {
		ln, h := restLs[i], handlers[i]
		jm.spawn(func() { errc <- rest.serve(restCtx, ln, h) })
		secured, what := l.Exposure()
		scheme := "http"
		if l.TLS {
			scheme = "https"
		}
		if secured {
			jm.log.Info("REST listener", "listener", l.Name, "url", scheme+"://"+ln.Addr().String(), "security", what)
		} else {
			jm.log.Warn(fmt.Sprintf("REST listener %q is NOT secured: %s", l.Name, what), "url", scheme+"://"+ln.Addr().String(), "authentication", strings.Join(l.Authentication, ","))
		}
	}
	jm.bg.Add(2)
	go jm.monitorHeartbeats(ctx)
	go jm.runJobStore(ctx)

	jm.log.Info("jobmanager started", "cluster-id", jm.clusterID, "rpc", jm.rpcAddr, "blob", jm.blobAddr)
	close(jm.ready)

	var runErr error
	select {
	case <-parent.Done():
	case runErr = <-errc:
	}
	stopREST()
	jm.shutdown(gs, cancel)
	if errors.Is(runErr, grpc.ErrServerStopped) {
		runErr = nil
	}
	return runErr
}

// bindHost maps Flink's "bind to everything" spellings to Go's.
func bindHost(h string) string {
	if h == "0.0.0.0" || h == "*" {
		return ""
	}
	return h
}

// advertise returns the address others should dial for a listener bound to
// a: the configured host name with the bound port.
func advertise(a net.Addr, host string) string {
	_, port, _ := net.SplitHostPort(a.String())
	if host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// signalSlots wakes everyone waiting for slots. Call with mu held.
func (jm *JobManager) signalSlots() {
	close(jm.slotFreed)
	jm.slotFreed = make(chan struct{})
}
