package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/security/authn"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage bearer tokens of the REST API"}
	cmd.AddCommand(newTokenCreateCmd(g))
	return cmd
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var user, file string
	var groups []string
	cmd := &cobra.Command{
		Use:   "create --user USER [--groups G1,G2] --file FILE",
		Short: "Create a bearer token for a user and append its hash to a token file",
		Long: `Creates a random token for --user (member of --groups), appends the line with its
SHA-256 hash to --file (created 0600), and prints the token once on stdout. Only the
hash is kept: a lost token cannot be recovered, only replaced. Point the JobManager's
token authentication at FILE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return errors.New("--user is required: the user the token authenticates")
			}
			if file == "" {
				return errors.New("--file is required: the token file the JobManager reads")
			}
			var gs []string
			for _, gr := range groups {
				if gr = strings.TrimSpace(gr); gr != "" {
					gs = append(gs, gr)
				}
			}
			tok, err := authn.AppendToken(file, user, gs)
			if err != nil {
				return fmt.Errorf("create token for %s in %s: %w", user, file, err)
			}
			// The token alone on stdout, so that it can be piped into a file;
			// the hint on stderr does not pollute it.
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			fmt.Fprintf(cmd.ErrOrStderr(), "store it now: only its hash is kept in %s\n", file)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&user, "user", "", "user the token authenticates (required)")
	f.StringSliceVar(&groups, "groups", nil, "groups of the user, comma-separated")
	f.StringVar(&file, "file", "", "token file to append the hash to (required; created 0600)")
	return cmd
}
