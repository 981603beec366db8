package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newAuthCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "Ask the JobManager about your permissions"}
	cmd.AddCommand(newCanICmd(g))
	return cmd
}

func newCanICmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "can-i VERB RESOURCE",
		Short: "Ask whether you may do VERB (view, list, submit, cancel, savepoint, admin, read, write) on RESOURCE (cluster, jobs, job/<id>, file:/path, ...)",
		Example: `  sluice auth can-i submit jobs
  sluice auth can-i cancel job/3f2a...
  sluice auth can-i write file:/srv/out/alice/result`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := cf.connect()
			if err != nil {
				return err
			}
			defer cancel()
			ok, reason, err := c.CanI(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			answer := "no"
			if ok {
				answer = "yes"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s - %s\n", answer, reason)
			if !ok {
				return &exitError{1, errSilent}
			}
			return nil
		},
	}
	cf.add(g, cmd)
	return cmd
}
