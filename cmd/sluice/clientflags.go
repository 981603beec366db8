package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
)

// clientFlags are the flags of commands that talk to a JobManager. They
// win over the environment, which wins over the client config file
// ($SLUICECONFIG or ~/.sluice/config.yaml); client.Resolve does the merge.
type clientFlags struct {
	s client.Settings
	// g gives the cluster configuration (--config, -D): the client reads
	// rest.address, rest.port and security.ssl.rest.* from it, as Flink's
	// CLI does, below contexts, the environment and flags.
	g *globals
	// getenv is os.Getenv, replaced in tests.
	getenv func(string) string
}

func (f *clientFlags) add(g *globals, cmd *cobra.Command) {
	f.g = g
	fl := cmd.Flags()
	fl.StringVarP(&f.s.JobManager, "jobmanager", "m", "", "JobManager REST URL, http:// or https:// (default: $SLUICE_JOBMANAGER, else the context's jobmanager, else rest.address and rest.port of --config/-D, else "+client.DefaultURL+")")
	fl.StringVar(&f.s.CACert, "cacert", "", "PEM bundle of the CAs to trust for https (default: the context's cacert, else the system roots)")
	fl.StringVar(&f.s.Cert, "cert", "", "client certificate, PEM (may also hold the key)")
	fl.StringVar(&f.s.Key, "key", "", "key of --cert, PEM (default: read from the --cert file)")
	fl.StringVar(&f.s.Token, "token", "", "bearer token (other local users can see it in ps: prefer --token-file or $SLUICE_TOKEN)")
	fl.StringVar(&f.s.TokenFile, "token-file", "", "file holding the bearer token")
	fl.StringVar(&f.s.Context, "context", "", "context of the client config file to use (default: its current-context)")
	fl.BoolVar(&f.s.Kerberos, "kerberos", false, "authenticate with Kerberos (SPNEGO) from the ticket cache kinit wrote ($KRB5CCNAME, krb5.conf from $KRB5_CONFIG)")
	fl.StringVar(&f.s.KerberosSPN, "kerberos-spn", "", "service principal of the JobManager (default: HTTP/<host of --jobmanager>)")
}

// addRootClientFlags declares --kerberos and --kerberos-spn on the root
// too, hidden, so that `sluice --kerberos list` finds the list command:
// cobra must know, before it picks the command, that --kerberos takes no
// value. The commands' own flags of the same names shadow these and
// receive the values; a command without client flags rejects them.
func addRootClientFlags(root *cobra.Command) {
	var kerberos bool
	var spn string
	pf := root.PersistentFlags()
	pf.BoolVar(&kerberos, "kerberos", false, "authenticate with Kerberos (client commands)")
	pf.StringVar(&spn, "kerberos-spn", "", "service principal of the JobManager (client commands)")
	_ = pf.MarkHidden("kerberos")
	_ = pf.MarkHidden("kerberos-spn")
	prev := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if kerberos || spn != "" {
			return fmt.Errorf("sluice %s: --kerberos applies to commands that talk to a JobManager", cmd.Name())
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// options resolves the flags, environment and context into client
// options, logging warnings (never the token).
func (f *clientFlags) options() (client.Options, error) {
	getenv := f.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	s := f.s
	if f.g != nil {
		cfg, err := f.g.loadConfig()
		if err != nil {
			return client.Options{}, err
		}
		if s.Config, err = client.LayerFromConfig(cfg); err != nil {
			return client.Options{}, err
		}
	}
	r, err := client.Resolve(s, getenv)
	if err != nil {
		return client.Options{}, err
	}
	for _, w := range r.Warnings {
		slog.Warn(w)
	}
	if r.Context != "" {
		slog.Debug("client context", "context", r.Context, "path", r.ConfigPath, "options", r.Options)
	}
	return r.Options, nil
}

func (f *clientFlags) client() (*client.Client, error) {
	o, err := f.options()
	if err != nil {
		return nil, err
	}
	return client.NewWithOptions(o)
}

// connect returns the client and a context for one short request/answer
// exchange with the JobManager.
func (f *clientFlags) connect() (*client.Client, context.Context, context.CancelFunc, error) {
	c, err := f.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	return c, ctx, cancel, nil
}
