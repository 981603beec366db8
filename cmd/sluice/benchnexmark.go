package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/nexmarkbench"
)

func newBenchNexmarkCmd(g *globals) *cobra.Command {
	o := nexmarkbench.DefaultOptions()
	var all bool
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "nexmark",
		Short: "Events per core-second of the Nexmark queries, beside Flink's published figure; one JSON object per query",
		Long: `Runs a Nexmark query (the spec --dir/QUERY.yaml) on an in-process cluster (a
JobManager and two TaskManagers over loopback sockets) from the nexmark source
(--events events, generated as fast as the query takes them) into a blackhole
sink (the spec's sinks are replaced), with checkpoints every
--checkpoint-interval, and prints one JSON object:

  query, events, seconds (submission to FINISHED), events_per_sec,
  cpu_seconds (user + system time of this whole process, from getrusage),
  events_per_core_sec (events / cpu_seconds), flink_per_core (Flink 1.13's
  published events/s per core for the query) and ratio_to_flink.

With --all, runs q0-q5, q7, q8, q11 and q12 in turn (one cluster), prints each
query's JSON object as it finishes and then a table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			queries := []string{o.Query}
			switch {
			case all && o.Query != "":
				return fmt.Errorf("--query %s and --all: give one of them", o.Query)
			case all:
				queries = nexmarkbench.Queries
			case o.Query == "":
				return fmt.Errorf("--query: name a query (%s) or give --all", strings.Join(nexmarkbench.Queries, ", "))
			}
			if o.Events < 0 || o.Parallelism < 1 || o.CheckpointInterval < 0 {
				return fmt.Errorf("--events must be at least 0 (0: the query's default), --parallelism at least 1, --checkpoint-interval at least 0 (0: no checkpoints)")
			}
			c, err := nexmarkbench.StartCluster(cmd.Context(), o.Parallelism, g.log)
			if err != nil {
				return fmt.Errorf("bench nexmark: %w", err)
			}
			defer c.Stop()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			var results []*nexmarkbench.Result
			for _, q := range queries {
				qo := o
				qo.Query = q
				res, err := c.Run(cmd.Context(), qo)
				if err != nil {
					return fmt.Errorf("bench nexmark: %w", err)
				}
				if err := enc.Encode(res); err != nil {
					return err
				}
				results = append(results, res)
			}
			if all {
				return printNexmarkTable(out, results)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Query, "query", "", "the query to run: q0 ... q12 (its spec is --dir/QUERY.yaml)")
	f.BoolVar(&all, "all", false, "run "+strings.Join(nexmarkbench.Queries, ", ")+" in turn and print a table after their JSON objects")
	f.StringVar(&o.Dir, "dir", o.Dir, "directory of the query specs qN.yaml")
	f.Int64Var(&o.Events, "events", o.Events, "events the nexmark source generates for each query (0: the query's default, about 10-20 s on 2 cores: q0 and q2 80M, q1 60M, q12 40M, q3 and q8 30M, q11 20M, q5 8M, q7 5M, q4 4M)")
	f.IntVarP(&o.Parallelism, "parallelism", "p", o.Parallelism, "parallelism of the query's job")
	f.DurationVar(&o.CheckpointInterval, "checkpoint-interval", o.CheckpointInterval, "execution.checkpointing.interval of the query's job (0: no checkpoints)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the runs (the whole process) to this file, for go tool pprof")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "longest one query may run")
	return cmd
}

// printNexmarkTable prints the results as a table, Flink's figure and the
// ratio beside each query's events per core-second.
func printNexmarkTable(w io.Writer, results []*nexmarkbench.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "query\tevents\tseconds\tevents/s\tcpu s\tevents/core-s\tflink/core\tratio\t")
	for _, r := range results {
		flink, ratio := "-", "-"
		if r.FlinkPerCore > 0 {
			flink, ratio = fmt.Sprintf("%.0f", r.FlinkPerCore), fmt.Sprintf("%.1fx", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.0f\t%.1f\t%.0f\t%s\t%s\t\n", r.Query, r.Events, r.Seconds, r.EventsPerSec, r.CPUSeconds, r.EventsPerCoreSec, flink, ratio)
	}
	return tw.Flush()
}
