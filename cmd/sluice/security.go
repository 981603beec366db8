package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/security/ca"
)

func newSecurityCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "security", Short: "Create and check security material"}
	cmd.AddCommand(newCreateCertsCmd(g), newSecurityCheckCmd(g), newJoinTokenCmd(g), newRevokeTaskManagerCmd(g))
	return cmd
}

func newJoinTokenCmd(g *globals) *cobra.Command {
	var (
		cf      clientFlags
		ttl     time.Duration
		maxUses int
		keepOld bool
	)
	cmd := &cobra.Command{
		Use:   "new-join-token",
		Short: "Create a join token on the JobManager (automatic mode) and retire the old ones, without a restart",
		Long: `Asks the JobManager (POST /admin/join-tokens, verb admin on cluster) for a new join token,
prints it on stdout and retires every other token unless --keep-old: TaskManagers that already
joined keep their certificates (they renew with them, not with the token); a TaskManager that
joins from now on needs the new token. The JobManager also writes it to its join-token file.

A token admits --max-uses joins (default security.ssl.internal.auto.join-token.max-uses, 1:
single-use; 0: unbounded until it expires), each issuing one certificate for one TaskManager id;
an id that a live TaskManager holds is never issued.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := cf.connect()
			if err != nil {
				return err
			}
			defer cancel()
			tok, err := c.NewJoinToken(ctx, ttl, maxUses, keepOld)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			uses := "unbounded"
			if tok.MaxUses > 0 {
				uses = fmt.Sprint(tok.MaxUses)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "join token %s: expires %s, uses %s, written to %s on the JobManager; retired: %v\n",
				tok.ID, tok.Expires.Format(time.RFC3339), uses, tok.File, tok.Retired)
			return nil
		},
	}
	cf.add(g, cmd)
	f := cmd.Flags()
	f.DurationVar(&ttl, "ttl", 0, "lifetime of the token (default security.cluster.join-token.ttl)")
	f.IntVar(&maxUses, "max-uses", -1, "joins the token admits; 0 unbounded (default security.ssl.internal.auto.join-token.max-uses)")
	f.BoolVar(&keepOld, "keep-old", false, "keep the current tokens valid instead of retiring them")
	return cmd
}

func newRevokeTaskManagerCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "revoke-taskmanager ID",
		Short: "Revoke a TaskManager's certificates and drop its registration",
		Long: `Asks the JobManager (POST /admin/taskmanagers/ID/revoke, verb admin on cluster) to refuse the
TaskManager's certificates from now on (every certificate its CA issued to ID in automatic mode,
and the one ID registered with): it can no longer register, heartbeat or renew, and its tasks
fail over to other TaskManagers. In automatic mode the revocation is kept in the CA directory
across restarts (under Kubernetes high availability in the Secret <cluster-id>-cluster-ca-registry,
so it holds under the next leader too); rotate the join token (new-join-token) if the TaskManager may still hold one.
A TaskManager using a shared certificate cannot be revoked alone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := cf.connect()
			if err != nil {
				return err
			}
			defer cancel()
			r, err := c.RevokeTaskManager(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "taskmanager %s revoked: certificate serials %v (issued by join tokens %v)\n", r.TaskManager, r.Serials, r.Tokens)
			return nil
		},
	}
	cf.add(g, cmd)
	return cmd
}

func newCreateCertsCmd(g *globals) *cobra.Command {
	var o ca.CreateCertsOptions
	cmd := &cobra.Command{
		Use:   "create-certs --out DIR",
		Short: "Create a cluster CA, a shared internal keystore, per-process certificates and a REST certificate",
		Long: `Writes into DIR (key files 0600) and prints the SHA-1 and SHA-256 fingerprints and a
configuration snippet that uses the files. Which file goes to which process:

  ca.crt, truststore.pem  every process (security.ssl.internal.truststore), and REST clients
  ca.key                  nobody: keep it offline; it signs new certificates
  internal.pem/.p12       every process, Flink's model: one shared certificate, no identities
  jobmanager.pem          the JobManager (security.ssl.internal.keystore): identity
                          spiffe://<cluster-id>/jobmanager
  taskmanager.pem         every TaskManager (security.ssl.internal.keystore): one certificate
                          shared by all TaskManagers, identity spiffe://<cluster-id>/taskmanager
                          (no id): each registers under its own --id (or a generated one); it
                          cannot act as the JobManager
  taskmanager-<id>.pem    (--taskmanager-ids) TaskManager <id> only: it takes its id from the
                          certificate; another process cannot use the id
  rest.pem                the JobManager's REST listener (security.ssl.rest.keystore)

Two TaskManagers can never register under the same id at once: the second is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Dir == "" {
				return fmt.Errorf("--out DIR is required")
			}
			if o.Days < 0 {
				return fmt.Errorf("--days %d: want a positive number of days", o.Days)
			}
			r, err := ca.CreateCerts(o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Created certificates for cluster %s in %s:\n", r.ClusterID, r.Dir)
			for _, f := range r.Files {
				st, _ := os.Stat(f)
				fmt.Fprintf(out, "  %-22s %v\n", filepath.Base(f), st.Mode().Perm())
			}
			fmt.Fprintf(out, "\nPassword of internal.p12 (shown once): %s\n\nFingerprints:\n", r.P12Password)
			names := make([]string, 0, len(r.Fingerprints))
			for n := range r.Fingerprints {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fp := r.Fingerprints[n]
				fmt.Fprintf(out, "  %s\n    SHA-1:   %s\n    SHA-256: %s\n", n, fp.SHA1, fp.SHA256)
			}
			fmt.Fprintf(out, "\nConfiguration (conf/config.yaml):\n\n%s", r.ConfigSnippet())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "out", "", "directory to write (created 0700; existing files are never overwritten)")
	f.StringVar(&o.ClusterID, "cluster-id", "", "cluster id in the identities (default: generated)")
	f.StringSliceVar(&o.Hosts, "hosts", nil, "host names and IP addresses for the certificates (default localhost,127.0.0.1)")
	f.IntVar(&o.Days, "days", 365, "validity of the certificates in days")
	f.StringSliceVar(&o.TaskManagerIDs, "taskmanager-ids", nil, "also create taskmanager-<id>.pem for each id")
	return cmd
}
