package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
	"github.com/sluice-dev/sluice/internal/config"
)

func newSavepointCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "savepoint JOB_ID [TARGET_DIR]",
		Short: "Take a savepoint of a running job and print its location",
		Long: `Takes a savepoint of a running job into TARGET_DIR (default: the cluster's
state.savepoints.dir) and waits for it. Progress goes to stderr; the savepoint's location is
the last line of stdout, so that

  sluice run --fromSavepoint "$(sluice savepoint JOB_ID | tail -1)" job.yaml

starts a job from it. TARGET_DIR is a directory of the cluster (file:///path or /path) that
the JobManager and every TaskManager can write.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := targetDirArg(args[1:], "TARGET_DIR")
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			id := args[0]
			fmt.Fprintf(cmd.ErrOrStderr(), "Triggering savepoint for job %s.\n", id)
			trigger, err := c.TriggerSavepoint(ctx, id, target, false)
			if err != nil {
				return err
			}
			return awaitSavepoint(ctx, c, cmd, id, trigger)
		},
	}
	cf.add(g, cmd)
	return cmd
}

func newStopCmd(g *globals) *cobra.Command {
	var cf clientFlags
	var target string
	var drain bool
	cmd := &cobra.Command{
		Use:   "stop JOB_ID",
		Short: "Stop a job with a savepoint and print its location",
		Long: `Stops a job with a savepoint (Flink's stop): its sources stop, a savepoint is taken
into --savepointPath (default: the cluster's state.savepoints.dir), and the job ends FINISHED.
With --drain the sources end their input first, so windows and bounded aggregates emit their
results before the savepoint. Progress goes to stderr; the savepoint's location is the last
line of stdout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dirs []string
			if cmd.Flags().Changed("savepointPath") {
				dirs = []string{target}
			}
			dir, err := targetDirArg(dirs, "--savepointPath")
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			id := args[0]
			verb := "Suspending" // as Flink's CLI says it
			if drain {
				verb = "Draining"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s job %s with a savepoint.\n", verb, id)
			trigger, err := c.StopWithSavepoint(ctx, id, dir, drain)
			if err != nil {
				return err
			}
			return awaitSavepoint(ctx, c, cmd, id, trigger)
		},
	}
	cf.add(g, cmd)
	f := cmd.Flags()
	f.StringVarP(&target, "savepointPath", "p", "", "directory of the savepoint, file:///path or /path on the cluster (default: state.savepoints.dir)")
	f.BoolVarP(&drain, "drain", "d", false, "end the job's input before the savepoint, so windows and aggregates emit their results")
	return cmd
}

// targetDirArg checks a savepoint target given on the command line: a
// directory of the cluster, so file:///path or an absolute path. Checked
// here so a relative path is refused before anything is triggered.
func targetDirArg(args []string, what string) (string, error) {
	if len(args) == 0 {
		return "", nil
	}
	if _, err := config.LocalDir(args[0]); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return args[0], nil
}

// awaitSavepoint polls a savepoint operation, reports progress on stderr and
// prints the location alone on the last line of stdout.
func awaitSavepoint(ctx context.Context, c *client.Client, cmd *cobra.Command, id, trigger string) error {
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "Waiting for the savepoint (trigger %s)...\n", trigger)
	location, err := c.WaitSavepoint(ctx, id, trigger, savepointProgress(stderr))
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "interrupted: the savepoint may still complete; its state is at GET /jobs/%s/savepoints/%s\n", id, trigger)
		return &exitError{130, ctx.Err()}
	}
	var failed *client.SavepointFailedError
	if errors.As(err, &failed) {
		return &exitError{1, err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Savepoint completed. Resume from it with: sluice run --fromSavepoint %s SPEC\n", location)
	fmt.Fprintln(cmd.OutOrStdout(), location)
	return nil
}

// savepointProgress reports a savepoint still in progress every few seconds,
// so a long one shows that it is alive without filling the terminal.
func savepointProgress(w io.Writer) func(string, time.Duration) {
	var last time.Duration
	return func(state string, waited time.Duration) {
		if waited-last < 5*time.Second {
			return
		}
		last = waited
		fmt.Fprintf(w, "  %s after %s\n", state, waited.Round(time.Second))
	}
}
