package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/jobmanager"
	"github.com/sluice-dev/sluice/internal/minicluster"
	"github.com/sluice-dev/sluice/internal/processlog"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
	"github.com/sluice-dev/sluice/internal/taskmanager"
)

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newJobManagerCmd(g *globals) *cobra.Command {
	var workDir string
	cmd := &cobra.Command{
		Use:   "jobmanager",
		Short: "Run a JobManager (REST API, scheduler, blob server, control plane)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			set, err := jobmanager.SettingsFromConfig(cfg)
			if err != nil {
				return err
			}
			logs := processlog.ForProcess(cfg, "jobmanager", "")
			closeLog, err := g.teeLog(logs)
			if err != nil {
				return err
			}
			defer closeLog()
			dir, temporary, err := jobmanager.WorkDir(set.WorkingDir, workDir)
			if err != nil {
				return err
			}
			if temporary {
				// Run removes it on shutdown; this covers a failed start.
				defer os.RemoveAll(dir)
			}
			ctx, stop := signalContext()
			defer stop()
			// The first signal starts a graceful shutdown; a second one
			// gets the default behaviour and ends the process at once.
			go func() { <-ctx.Done(); stop() }()
			sec, err := internaltls.SetupJobManager(ctx, cfg, g.log, dir)
			if err != nil {
				return err
			}
			jm, err := jobmanager.New(jobmanager.Options{
				Config: cfg, Logger: g.log, WorkDir: dir, RemoveWorkDir: temporary, Security: sec.Security, ClusterID: sec.ClusterID,
				RPCServerOptions: sec.ServerOptions(), RegisterRPC: sec.Register, Internal: sec,
				Reloaders: []jobmanager.Reloader{{Name: "internal-tls", Kind: jobmanager.ReloadCertificates, Reload: sec.ReloadTLS}},
				Logs:      logs,
			})
			if err != nil {
				return err
			}
			return jm.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&workDir, "work-dir", "", "persistent directory for the blob store and, in automatic mode without security.ssl.internal.auto.dir, the cluster CA (default: <process.jobmanager.working-dir>/jobmanager, else a temporary directory removed on shutdown)")
	return cmd
}

func newTaskManagerCmd(g *globals) *cobra.Command {
	var workDir, id, joinToken string
	cmd := &cobra.Command{
		Use:   "taskmanager",
		Short: "Run a TaskManager that offers slots to the JobManager",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			// Before joining: a bad checkpoint key must not use up a join token.
			if _, err := taskmanager.LoadCheckpointKey(cfg); err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			sec, err := internaltls.SetupTaskManager(ctx, cfg, g.log, id, joinToken, func() string { return taskmanager.DefaultID(taskmanager.SettingsFromConfig(cfg)) })
			if err != nil {
				return err
			}
			// Once the id is known, which names the log file.
			logs := processlog.ForProcess(cfg, "taskmanager", sec.ID)
			closeLog, err := g.teeLog(logs)
			if err != nil {
				return err
			}
			defer closeLog()
			tm, err := taskmanager.New(taskmanager.Options{Config: cfg, Logger: g.log, WorkDir: workDir, ID: sec.ID, Security: sec.Security, RPCServerOptions: sec.ServerOptions(), Logs: logs})
			if err != nil {
				return err
			}
			return tm.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&workDir, "work-dir", "", "directory for the blob cache (default: a new temporary directory)")
	cmd.Flags().StringVar(&joinToken, "join-token", "", "join a cluster in automatic TLS mode with this token (or security.cluster.join-token / security.cluster.join-token-file)")
	cmd.Flags().StringVar(&id, "id", "", "resource id of this TaskManager, unique among the live ones (default: taskmanager.resource-id, else the id its certificate names, else host name and a random suffix)")
	return cmd
}

func newLocalCmd(g *globals) *cobra.Command {
	var params []string
	var parallelism, tms, slots, restPort int
	cmd := &cobra.Command{
		Use:   "local SPEC",
		Short: "Run a job on an in-process cluster (a JobManager and TaskManagers on loopback)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			spec, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			pm, err := parseParams(params)
			if err != nil {
				return err
			}
			// sluice local is encrypted and mutually authenticated out of
			// the box, unless the configuration says otherwise.
			if !cfg.IsSet("security.ssl.internal.auto") && !cfg.Bool("security.ssl.internal.enabled") {
				if err := cfg.Set("security.ssl.internal.auto", "true"); err != nil {
					return err
				}
			}
			ctx, stop := signalContext()
			defer stop()
			c, err := minicluster.Start(context.Background(), minicluster.Options{
				Config: cfg, Logger: g.log, TaskManagers: tms, Slots: slots, Stdout: cmd.OutOrStdout(), RESTPort: restPort,
				DefaultCheckpointsDir: true,
			})
			if err != nil {
				return err
			}
			defer c.Stop()
			// The in-process cluster shares this working directory, so
			// relative data paths mean what the user means by them.
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			id, err := c.JM.Submit(jobmanager.Submission{Spec: spec, Params: pm, Parallelism: parallelism, BaseDir: wd})
			if err != nil {
				return err
			}
			state, cause, err := c.JM.Wait(ctx, id)
			if err != nil {
				g.log.Info("interrupted: cancelling the job", "job", id)
				_ = c.JM.Cancel(id)
				wctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				state, _, _ = c.JM.Wait(wctx, id)
				return &exitError{130, fmt.Errorf("job %s %s", id, state)}
			}
			g.log.Info("job ended", "job", id, "state", state)
			if state != jobmanager.Finished {
				return &exitError{1, fmt.Errorf("job %s %s: %s", id, state, cause)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&params, "param", nil, "job parameter: --param name=value (repeatable)")
	f.IntVarP(&parallelism, "parallelism", "p", 0, "default parallelism of the job (default: parallelism.default)")
	f.IntVar(&tms, "taskmanagers", 2, "number of TaskManagers")
	f.IntVar(&slots, "slots", 2, "task slots per TaskManager")
	f.IntVar(&restPort, "rest-port", 0, "REST port of the in-process JobManager on 127.0.0.1 (default: a free port)")
	return cmd
}
