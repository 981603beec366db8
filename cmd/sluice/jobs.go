package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sluice-dev/sluice/internal/client"
)

func newRunCmd(g *globals) *cobra.Command {
	var cf clientFlags
	var params, files []string
	var viewUsers, viewGroups, modifyUsers, modifyGroups []string
	var parallelism int
	var detached, allowNonRestored bool
	var fromSavepoint string
	cmd := &cobra.Command{
		Use:   "run SPEC",
		Short: "Submit a job to a JobManager and wait for it to end (or --detached)",
		Long: `Submits a job spec to a JobManager and waits for it to end (or --detached).

-D key=value works as with flink run: keys a job may set for itself (parallelism.default,
pipeline.max-parallelism, restart-strategy.*, execution.checkpointing.*, state.backend.*)
apply to this job only; rest.* and security.ssl.rest.* configure this
client; any other key is a cluster setting and is refused.

--fromSavepoint (-s) starts the job from a savepoint: the location sluice savepoint or
sluice stop printed (its directory, its _metadata, or a file: URI of either), or a retained
checkpoint's chk-N directory. Operators are matched by name; --allowNonRestoredState (-n)
drops the savepoint's state of operators the job no longer has instead of refusing it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if allowNonRestored && fromSavepoint == "" {
				return fmt.Errorf("--allowNonRestoredState (-n) applies to a job started from a savepoint: give --fromSavepoint (-s) PATH too")
			}
			jobConfig, clientDefines, err := splitRunDefines(g.defines)
			if err != nil {
				return err
			}
			g.defines = clientDefines
			c, err := cf.client()
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
			ctx, stop := signalContext()
			defer stop()
			sub, err := c.SubmitJobResult(ctx, client.Submission{
				Spec: spec, Params: pm, Parallelism: parallelism, Files: files,
				ViewUsers: viewUsers, ViewGroups: viewGroups, ModifyUsers: modifyUsers, ModifyGroups: modifyGroups,
				Config: jobConfig, SavepointPath: fromSavepoint, AllowNonRestoredState: allowNonRestored,
			})
			if err != nil {
				return err
			}
			id := sub.ID
			// On stderr, so --detached still prints the job id alone on stdout.
			for _, w := range sub.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: job %s: %s\n", id, w)
			}
			if detached {
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Job has been submitted with JobID %s\n", id)
			// Printed records go to stdout as the job prints them; the status line to
			// stderr, and only when both are a terminal (see statusLine).
			j, err := c.Follow(ctx, id, client.FollowOptions{
				Output: cmd.OutOrStdout(), Notices: cmd.ErrOrStderr(), Status: statusLine(cmd.OutOrStdout(), cmd.ErrOrStderr()),
			})
			if ctx.Err() != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "interrupted: job %s keeps running; cancel it with: sluice cancel %s\n", id, id)
				return &exitError{130, ctx.Err()}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Job %s %s\n", id, j.State)
			if j.State != "FINISHED" {
				return &exitError{1, fmt.Errorf("job %s %s: %s", id, j.State, j.FailureCause)}
			}
			return nil
		},
	}
	cf.add(g, cmd)
	f := cmd.Flags()
	f.StringArrayVar(&params, "param", nil, "job parameter: --param name=value (repeatable)")
	f.StringArrayVar(&files, "file", nil, "attach a local file to the job, named by its base name (repeatable)")
	f.StringSliceVar(&viewUsers, "view-users", nil, "users who may view the job (you own it)")
	f.StringSliceVar(&viewGroups, "view-groups", nil, "groups whose members may view the job")
	f.StringSliceVar(&modifyUsers, "modify-users", nil, "users who may view and cancel the job")
	f.StringSliceVar(&modifyGroups, "modify-groups", nil, "groups whose members may view and cancel the job")
	f.IntVarP(&parallelism, "parallelism", "p", 0, "default parallelism of the job (default: the cluster's parallelism.default)")
	f.BoolVarP(&detached, "detached", "d", false, "print the job id and return without waiting")
	f.StringVarP(&fromSavepoint, "fromSavepoint", "s", "", "start the job from this savepoint: the location sluice savepoint or sluice stop printed")
	f.BoolVarP(&allowNonRestored, "allowNonRestoredState", "n", false, "with --fromSavepoint: drop the state of operators the job does not have instead of refusing the savepoint")
	return cmd
}

func newListCmd(g *globals) *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := cf.connect()
			if err != nil {
				return err
			}
			defer cancel()
			jobs, err := c.Jobs(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(jobs)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "JOB ID\tNAME\tSTATE\tSTARTED\tDURATION")
			for _, j := range jobs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.State,
					time.UnixMilli(j.StartTime).Format(time.DateTime), (time.Duration(j.Duration) * time.Millisecond).Round(time.Millisecond))
			}
			return w.Flush()
		},
	}
	cf.add(g, cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var cf clientFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status JOB_ID",
		Short: "Show a job's state and its vertices",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := cf.connect()
			if err != nil {
				return err
			}
			defer cancel()
			if asJSON {
				var raw json.RawMessage
				if err := c.Get(ctx, "/jobs/"+url.PathEscape(args[0]), &raw); err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(append(raw, '\n'))
				return err
			}
			j, err := c.Job(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Job %s (%s): %s\n", j.ID, j.Name, j.State)
			if j.FailureCause != "" {
				fmt.Fprintf(out, "Cause: %s\n", j.FailureCause)
			}
			if j.PendingReason != "" {
				fmt.Fprintf(out, "Pending: %s\n", j.PendingReason)
			}
			if j.Restarts > 0 {
				fmt.Fprintf(out, "Restarts: %d\n", j.Restarts)
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERTEX\tPARALLELISM\tSTATUS\tREAD-RECORDS\tWRITE-RECORDS\tWRITE-BYTES")
			for _, v := range j.Vertices {
				fmt.Fprintf(w, "%s\t%d\t%s\t%v\t%v\t%v\n", v.Name, v.Parallelism, v.Status,
					v.Metrics.ReadRecords, v.Metrics.WriteRecords, v.Metrics.WriteBytes)
			}
			return w.Flush()
		},
	}
	cf.add(g, cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the REST answer (GET /jobs/{id})")
	return cmd
}

func newCancelCmd(g *globals) *cobra.Command {
	var cf clientFlags
	var wait bool
	cmd := &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := cf.connect()
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.Cancel(ctx, args[0]); err != nil {
				return err
			}
			if !wait {
				fmt.Fprintf(cmd.OutOrStdout(), "Cancellation of job %s requested\n", args[0])
				return nil
			}
			j, err := c.Wait(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Job %s %s\n", j.ID, j.State)
			return nil
		},
	}
	cf.add(g, cmd)
	cmd.Flags().BoolVar(&wait, "wait", true, "wait until the job has ended")
	return cmd
}

// statusLine returns the live status line of sluice run, or nil when there must be none.
// It is drawn on stderr, so stdout carries printed records only, and only when stdout and
// stderr are both a terminal: with stdout redirected the output is for a program (quiet, as
// a pipe expects), and with stderr redirected the redraws would fill a file.
func statusLine(stdout, stderr io.Writer) *client.StatusLine {
	out, ok1 := stdout.(*os.File)
	errf, ok2 := stderr.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(out.Fd())) || !term.IsTerminal(int(errf.Fd())) {
		return nil
	}
	return client.NewStatusLine(errf, func() int {
		w, _, err := term.GetSize(int(errf.Fd()))
		if err != nil {
			return 0
		}
		return w
	})
}
