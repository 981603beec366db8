package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newWhoamiCmd(g *globals) *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the JobManager takes you for: user, groups and authentication method",
		Long: `Asks the JobManager (GET /whoami) which identity it derived from your credentials:
the token (--token, --token-file, $SLUICE_TOKEN) or client certificate (--cert/--key)
given on the command line or by the context of ~/.sluice/config.yaml ($SLUICECONFIG).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := cf.connect()
			if err != nil {
				return err
			}
			defer cancel()
			id, err := c.WhoAmI(ctx)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(id)
			}
			fmt.Fprintf(out, "user: %s\ngroups: %s\nmethod: %s\n", id.Username, strings.Join(id.Groups, ", "), id.Method)
			if id.Listener != "" {
				fmt.Fprintf(out, "listener: %s\n", id.Listener)
			}
			return nil
		},
	}
	cf.add(g, cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
