package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/securitycheck"
)

func newSecurityCheckCmd(g *globals) *cobra.Command {
	warnDays := 30
	role := securitycheck.RoleAll
	var tmID, joinToken string
	cmd := &cobra.Command{
		Use:   "check --config FILE [--warn-days 30] [--role jobmanager|taskmanager|all]",
		Short: "Check a configuration as start-up does, and the Kerberos and TLS material it names, with the fix for each problem",
		Long: `Checks, for the configuration given with --config (and -D overrides):

- start-up: the JobManager's and TaskManager's own validation, the same code that runs before they
  listen (internal TLS stores and identities, REST listeners, authenticators, authorization, audit
  log, Kerberos login). What start-up would refuse is a [FAIL] with the error start-up prints.
  --role limits this to one process kind.
- Kerberos: the keytabs (security.kerberos.login.keytab, security.rest.authentication.kerberos.keytab)
  are readable and not readable by group or others, hold their principal with a usable encryption
  type; krb5.conf parses; the KDC answers and a TGT is obtained with the keytab; the clock agrees
  with the KDC's; in ticket-cache mode, when the cached ticket (the cache the processes read) expires.
- TLS: the key and trust stores (security.ssl.internal.*, security.ssl.rest.*) load, their
  certificates do not expire within --warn-days, and each trust store holds the issuer of its key
  store's certificate.

Prints one line per check, [ OK ], [WARN], [SKIP] or [FAIL] with the fix, and exits non-zero when
any check failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if warnDays < 0 {
				return fmt.Errorf("--warn-days %d: want a number of days, 0 or more", warnDays)
			}
			if err := securitycheck.ValidateRole(role); err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			f := securitycheck.Run(ctx, securitycheck.Options{
				Config: cfg, Role: role, Now: time.Now(), WarnWithin: time.Duration(warnDays) * 24 * time.Hour, Getenv: os.Getenv,
				TaskManagerID: tmID, JoinToken: joinToken,
			})
			if err := f.Print(cmd.OutOrStdout()); err != nil {
				return err
			}
			if n := f.Failed(); n > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of the security checks failed", n)}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&warnDays, "warn-days", warnDays, "warn about certificates that expire within this many days")
	cmd.Flags().StringVar(&role, "role", role, "validate the start-up of: jobmanager, taskmanager or all")
	cmd.Flags().StringVar(&tmID, "id", "", "the TaskManager's --id, for its start-up validation")
	cmd.Flags().StringVar(&joinToken, "join-token", "", "the TaskManager's --join-token, for its start-up validation (automatic mode)")
	return cmd
}
