package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/ha"
	"github.com/sluice-dev/sluice/internal/kube"
	"github.com/sluice-dev/sluice/internal/kube/session"
	"github.com/sluice-dev/sluice/internal/security/internaltls"
)

func newKubernetesSessionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kubernetes-session",
		Short: "Start, stop and list sluice session clusters on Kubernetes (kubernetes.* keys)",
	}
	cmd.AddCommand(newKubernetesStartCmd(g), newKubernetesStopCmd(g), newKubernetesListCmd(g), newKubernetesRBACCmd(g))
	return cmd
}

func newKubernetesStartCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Create a session: the JobManager Deployment, its Services, the config ConfigMap and a Secret per secret file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if !cfg.IsSet("kubernetes.cluster-id") {
				if err := cfg.Set("kubernetes.cluster-id", session.ClusterID(cfg)); err != nil {
					return err
				}
			}
			objs, err := session.Build(cfg)
			if err != nil {
				return err
			}
			if err := deploy(cmd.Context(), cfg, objs); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Session %s started in namespace %s.\n", objs.ClusterID, objs.Namespace)
			fmt.Fprintf(out, "JobManager: Deployment %s (%d replica(s), ServiceAccount %s)\n", objs.Deployment.Name,
				*objs.Deployment.Spec.Replicas, objs.Deployment.Spec.Template.Spec.ServiceAccountName)
			fmt.Fprintf(out, "REST API: Service %s (%s), port %d\n", objs.RESTService.Name, cfg.String("kubernetes.rest-service.exposed.type"), objs.RESTService.Spec.Ports[0].Port)
			fmt.Fprintf(out, "Configuration: ConfigMap %s (passwords and tokens in Secret %s)\n", objs.ConfigMap.Name, session.ConfigSecretName(objs.ClusterID))
			if len(objs.Files) > 0 {
				fmt.Fprintln(out, "Shipped as Secrets (mounted read-only, mode 0400):")
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "  KEY\tCLIENT FILE\tSECRET\tPATH IN PODS\tTASKMANAGERS")
				for _, f := range objs.Files {
					tm := "no"
					if f.TaskManagers {
						tm = "yes"
					}
					fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", f.Key, f.ClientPath, f.Secret, f.MountPath, tm)
				}
				w.Flush()
			}
			fmt.Fprintf(out, "Stop it with: sluice kubernetes-session stop -D kubernetes.cluster-id=%s -D kubernetes.namespace=%s\n", objs.ClusterID, objs.Namespace)
			return nil
		},
	}
}

func newKubernetesStopCmd(g *globals) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Delete every object of the session kubernetes.cluster-id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, id, err := sessionConfig(g, "stop")
			if err != nil {
				return err
			}
			client, err := kube.NewClient(cfg)
			if err != nil {
				return err
			}
			ns := cfg.String("kubernetes.namespace")
			ctx, cancel := context.WithTimeout(cmd.Context(), wait+30*time.Second)
			defer cancel()
			if err := session.Stop(ctx, client, ns, id); err != nil {
				return err
			}
			if wait <= 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Session %s in namespace %s is being deleted.\n", id, ns)
				return nil
			}
			deadline := time.Now().Add(wait)
			for {
				left, err := session.Remaining(ctx, client, ns, id)
				if err != nil {
					return fmt.Errorf("check what is left of session %s: %w", id, err)
				}
				if len(left) == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Session %s in namespace %s stopped; nothing of it is left.\n", id, ns)
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("session %s: still there after --wait %s: %s (run stop again, or raise --wait)", id, wait, strings.Join(left, ", "))
				}
				// Pods end after their grace period; ask again.
				if err := session.Stop(ctx, client, ns, id); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "wait until nothing of the session is left (0: do not wait)")
	return cmd
}

func newKubernetesListCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the sessions in kubernetes.namespace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			client, err := kube.NewClient(cfg)
			if err != nil {
				return err
			}
			ns := cfg.String("kubernetes.namespace")
			if all {
				ns = ""
			}
			infos, err := session.List(cmd.Context(), client, ns)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CLUSTER-ID\tNAMESPACE\tJOBMANAGERS\tIMAGE\tAGE")
			for _, in := range infos {
				fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\n", in.ClusterID, in.Namespace, in.Ready, in.Replicas, in.Image, time.Since(in.Created).Round(time.Second))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the sessions of every namespace")
	return cmd
}

func newKubernetesRBACCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rbac",
		Short: "Print the minimal Role and RoleBinding for the JobManager's ServiceAccount (kubectl apply -f -)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, id, err := sessionConfig(g, "rbac")
			if err != nil {
				return err
			}
			haSet, err := ha.SettingsFromConfig(cfg)
			if err != nil {
				return err
			}
			o := session.RBACOptions{AutoTLS: internaltls.ModeOf(cfg) == internaltls.Auto,
				Application: cfg.String("execution.target") == "kubernetes-application"}
			if haSet.Enabled() {
				o.TaskManagerServiceAccount = cfg.String("kubernetes.taskmanager.service-account")
			}
			y, err := session.RBACManifest(cfg.String("kubernetes.namespace"), id, cfg.String("kubernetes.service-account"), o)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(y)
			return err
		},
	}
}

// sessionConfig loads the configuration of a command about one existing
// session, which kubernetes.cluster-id names.
func sessionConfig(g *globals, verb string) (*config.Config, string, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, "", err
	}
	id := cfg.String("kubernetes.cluster-id")
	if id == "" {
		return nil, "", fmt.Errorf("kubernetes-session %s: kubernetes.cluster-id is not set: name the session with -D kubernetes.cluster-id=ID (sluice kubernetes-session list shows them)", verb)
	}
	return cfg, id, nil
}

// deploy creates a cluster's objects (session.Build) in the API server that cfg names, within
// two minutes; a failed start deletes what it created (session.Start).
func deploy(ctx context.Context, cfg *config.Config, objs *session.Objects) error {
	client, err := kube.NewClient(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return session.Start(ctx, client, objs)
}
