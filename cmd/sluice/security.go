package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/security/ca"
)

func newSecurityCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "security", Short: "Create and check security material"}
	cmd.AddCommand(newCreateCertsCmd(g), newSecurityCheckCmd(g))
	return cmd
}

func newCreateCertsCmd(g *globals) *cobra.Command {
	var o ca.CreateCertsOptions
	cmd := &cobra.Command{
		Use:   "create-certs --out DIR",
		Short: "Create a cluster CA, a shared internal keystore, per-process certificates and a REST certificate",
		Long: `Writes into DIR: ca.crt and ca.key; Flink's shared internal keystore (internal.pem, and
internal.p12 with the password printed below) with truststore.pem; per-process certificates with
identities (jobmanager.pem, taskmanager.pem, and taskmanager-<id>.pem for each --taskmanager-ids);
rest.pem with the --hosts as subject alternative names. Key files are 0600. Prints the SHA-1 and
SHA-256 fingerprints and a configuration snippet that uses the files.`,
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
