package main

import (
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/kube/application"
	"github.com/sluice-dev/sluice/internal/kube/session"
)

// applicationRun is sluice run --target kubernetes-application: it deploys
// an application cluster whose JobManager runs this one job (Flink's
// application mode) and returns; the cluster removes itself when the job
// has ended (execution.shutdown-on-application-finish).
type applicationRun struct {
	specPath              string
	params                map[string]string
	parallelism           int
	files                 []string
	fromSavepoint         string
	allowNonRestoredState bool
}

func (a applicationRun) run(cmd *cobra.Command, g *globals) error {
	if len(a.files) > 0 {
		return fmt.Errorf("--file cannot be used with --target %s: the job's files would have to travel in a ConfigMap; mount them with kubernetes.secrets and name their paths in the spec", application.Target)
	}
	// Every -D is the cluster's here: the client deploys it.
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	jobConfig := map[string]string{}
	for _, d := range g.defines {
		k, v, _ := strings.Cut(d, "=")
		if key, ok := config.Lookup(strings.TrimSpace(k)); ok && key.Job {
			jobConfig[key.Name] = v
		}
	}
	spec, err := os.ReadFile(a.specPath)
	if err != nil {
		return err
	}
	// Refused here rather than in a JobManager pod's log.
	if _, err := dataflow.ParseSpec(spec, a.params); err != nil {
		return fmt.Errorf("%s: %w", a.specPath, err)
	}
	if !cfg.IsSet("kubernetes.cluster-id") {
		if err := cfg.Set("kubernetes.cluster-id", session.ClusterID(cfg)); err != nil {
			return err
		}
	}
	owner := ""
	if u, err := user.Current(); err == nil {
		owner = u.Username
	}
	objs, err := application.Build(cfg, application.Job{
		Spec: spec, Params: a.params, Parallelism: a.parallelism, Config: jobConfig,
		SavepointPath: a.fromSavepoint, AllowNonRestoredState: a.allowNonRestoredState, Owner: owner,
	})
	if err != nil {
		return err
	}
	if err := deploy(cmd.Context(), cfg, objs); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Application cluster %s deployed in namespace %s: job %s runs there (REST API: Service %s).\n",
		objs.ClusterID, objs.Namespace, application.JobID(objs.ClusterID), objs.RESTService.Name)
	if cfg.Bool("execution.shutdown-on-application-finish") {
		fmt.Fprintln(out, "The cluster deletes itself when the job has ended (execution.shutdown-on-application-finish).")
	}
	fmt.Fprintf(out, "Stop it earlier with: sluice kubernetes-session stop -D kubernetes.cluster-id=%s -D kubernetes.namespace=%s\n", objs.ClusterID, objs.Namespace)
	return nil
}
