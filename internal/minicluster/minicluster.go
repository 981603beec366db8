// Package minicluster runs a JobManager and TaskManagers in one process,
// connected over real loopback sockets, for `sluice local` and tests.
package minicluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
	"github.com/sluice-dev/sluice/internal/taskmanager"
	"github.com/sluice-dev/sluice/internal/transport"
)

// Options configure a mini-cluster.
type Options struct {
	Config *config.Config
	// Security, when set, is used by every process as is; otherwise the
	// internal security is set up from Config (internaltls).
	Security     *transport.Security
	Logger       *slog.Logger
	TaskManagers int // default 2
	Slots        int // per TaskManager, default 2
	Stdout       io.Writer
	RESTPort     int // 0: a free port
	// DefaultCheckpointsDir: without state.checkpoints.dir in Config, the
	// cluster keeps checkpoints in <work dir>/checkpoints (sluice local: its
	// processes share one file system, so no shared directory is needed).
	DefaultCheckpointsDir bool
}

// Cluster is a running mini-cluster.
type Cluster struct {
	JM *jobmanager.JobManager
	// Internal is the internal security set up for the cluster (nil when
	// Options.Security was given).
	Internal *internaltls.JobManager
	workDir  string
	TMs      []*taskmanager.TaskManager
	// tmStop stops TMs[i] alone (KillTaskManager).
	tmStop []context.CancelFunc
	tmDone []chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// Start starts a JobManager and its TaskManagers on loopback ports chosen by
// the system and returns once every TaskManager has registered. ctx bounds
// the start-up only; Stop ends the cluster.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.TaskManagers <= 0 {
		o.TaskManagers = 2
	}
	if o.Slots <= 0 {
		o.Slots = 2
	}
	cfg := config.New()
	if o.Config != nil {
		cfg = o.Config.Clone()
	}
	for k, v := range map[string]string{
		"jobmanager.rpc.address": "127.0.0.1", "jobmanager.bind-host": "127.0.0.1", "jobmanager.rpc.port": "0",
		"blob.server.port": "0", "taskmanager.bind-host": "127.0.0.1", "taskmanager.host": "127.0.0.1",
		"taskmanager.data.port": "0", "taskmanager.rpc.port": "0", "taskmanager.metrics.port": "0",
		"taskmanager.numberOfTaskSlots": fmt.Sprint(o.Slots),
	} {
		if err := cfg.Set(k, v); err != nil {
			return nil, err
		}
	}
	// A mini-cluster must not collide with a real JobManager on 8081.
	if err := cfg.Set("rest.port", fmt.Sprint(o.RESTPort)); err != nil {
		return nil, err
	}
	if err := cfg.Set("rest.bind-address", "127.0.0.1"); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// ctx bounds only the start-up; the processes live until Stop.
	runCtx, cancel := context.WithCancel(context.Background())
	workDir, err := os.MkdirTemp("", "sluice-local-")
	if err != nil {
		cancel()
		return nil, err
	}
	c := &Cluster{cancel: cancel, errs: make(chan error, o.TaskManagers+1), workDir: workDir}
	if o.DefaultCheckpointsDir && !cfg.IsSet(config.CheckpointsDirKey) {
		if err := cfg.Set(config.CheckpointsDirKey, filepath.Join(workDir, "checkpoints")); err != nil {
			c.Stop()
			return nil, err
		}
	}
	jmOpts := jobmanager.Options{Config: cfg, Security: o.Security, Logger: o.Logger, WorkDir: filepath.Join(workDir, "jobmanager")}
	if o.Security == nil {
		sec, err := internaltls.SetupJobManager(runCtx, cfg, o.Logger, workDir)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Internal = sec
		jmOpts.Security, jmOpts.ClusterID = sec.Security, sec.ClusterID
		jmOpts.RPCServerOptions, jmOpts.RegisterRPC, jmOpts.Internal = sec.ServerOptions(), sec.Register, sec
	}
	jm, err := jobmanager.New(jmOpts)
	if err != nil {
		c.Stop()
		return nil, err
	}
	c.JM = jm
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := jm.Run(runCtx); err != nil {
			c.errs <- err
		}
	}()
	select {
	case <-jm.Ready():
	case err := <-c.errs:
		cancel()
		return nil, err
	case <-ctx.Done():
		c.Stop()
		return nil, ctx.Err()
	}
	_, port, _ := net.SplitHostPort(jm.RPCAddress())
	tmCfg := cfg.Clone()
	if err := tmCfg.Set("jobmanager.rpc.port", port); err != nil {
		cancel()
		return nil, err
	}
	for i := 0; i < o.TaskManagers; i++ {
		id := fmt.Sprintf("local-tm-%d", i+1)
		sec := o.Security
		var rpcOpts []grpc.ServerOption
		if sec == nil {
			token := ""
			if c.Internal.Mode == internaltls.Auto {
				// One single-use token per TaskManager, kept beside the
				// others: join tokens are bounded-use.
				tok, err := c.Internal.NewJoinToken(0, 1, true)
				if err != nil {
					c.Stop()
					return nil, err
				}
				token = tok.String()
			}
			tsec, err := internaltls.SetupTaskManager(runCtx, tmCfg, o.Logger, id, token, func() string { return id })
			if err != nil {
				c.Stop()
				return nil, err
			}
			sec, rpcOpts = tsec.Security, tsec.ServerOptions()
		}
		tm, err := taskmanager.New(taskmanager.Options{Config: tmCfg, Security: sec, Logger: o.Logger, Stdout: o.Stdout, LocalOutput: true, ID: id, WorkDir: filepath.Join(workDir, id), RPCServerOptions: rpcOpts})
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.TMs = append(c.TMs, tm)
		tmCtx, tmStop := context.WithCancel(runCtx)
		done := make(chan struct{})
		c.tmStop, c.tmDone = append(c.tmStop, tmStop), append(c.tmDone, done)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer close(done)
			if err := tm.Run(tmCtx); err != nil {
				c.errs <- err
			}
		}()
	}
	if err := jm.WaitForTaskManagers(ctx, o.TaskManagers); err != nil {
		c.Stop()
		select {
		case e := <-c.errs:
			return nil, e
		default:
		}
		return nil, err
	}
	return c, nil
}

// KillTaskManager stops TMs[i] alone, without a word to the JobManager:
// its tasks are cancelled and its listeners and connections close, as when
// the process dies (its peers see their connections break; the JobManager
// learns of it from the failed tasks or calls, or at heartbeat.timeout).
// It returns once the TaskManager has stopped.
func (c *Cluster) KillTaskManager(ctx context.Context, i int) error {
	if i < 0 || i >= len(c.TMs) {
		return fmt.Errorf("no taskmanager %d: the cluster has %d", i, len(c.TMs))
	}
	c.tmStop[i]()
	select {
	case <-c.tmDone[i]:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("taskmanager %s did not stop: %w", c.TMs[i].ID(), ctx.Err())
	}
}

// Stop shuts every process of the cluster down and waits for them.
func (c *Cluster) Stop() {
	c.cancel()
	c.wg.Wait()
	os.RemoveAll(c.workDir)
}
