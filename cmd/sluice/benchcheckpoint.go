package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/checkpointbench"
)

func newBenchCheckpointCmd(g *globals) *cobra.Command {
	o := checkpointbench.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Throughput of a keyed job without and with checkpoints, checkpoint duration and size per state backend, recovery time; one JSON object",
		Long: `Runs an in-process cluster (a JobManager and three TaskManagers over loopback
sockets) and measures, through its REST API:

  records_per_sec_baseline / records_per_sec_checkpointing / ratio
      generator -> key_by -> keyed sum -> blackhole, hashmap state, without and
      with checkpoints every --interval, --rounds alternating runs of --duration
      each; the medians.
  alignment_p99_ms
      p99 of alignment_duration in GET /jobs/{id}/checkpoints (largest over the
      checkpointing runs).
  checkpoint_duration_ms / checkpoint_size_bytes
      with --state-keys keys in state, for hashmap, pebble_full and
      pebble_incremental (its second checkpoint, after 1% of the keys changed).
  recovery_ms
      a TaskManager running the job is killed after a checkpoint; from the
      failure's detection to the first record the new attempt processes.

The defaults take about 2-3 minutes on 2 cores.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Duration <= 0 || o.Rounds < 1 || o.Parallelism < 1 || o.ThroughputKeys < 1 || o.StateKeys < 100 || o.Interval <= 0 {
				return fmt.Errorf("--duration and --interval must be positive, --rounds, --parallelism and --keys at least 1, --state-keys at least 100")
			}
			o.Logger = g.log
			res, err := checkpointbench.Run(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("bench checkpoint: %w", err)
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", o.Duration, "measuring time of each throughput run (after a warm-up)")
	f.IntVar(&o.Rounds, "rounds", o.Rounds, "baseline and checkpointing runs, alternating; the medians are reported")
	f.IntVar(&o.Parallelism, "parallelism", o.Parallelism, "parallelism of every job")
	f.Int64Var(&o.ThroughputKeys, "keys", o.ThroughputKeys, "distinct keys of the throughput and recovery jobs")
	f.Int64Var(&o.StateKeys, "state-keys", o.StateKeys, "keys in state for checkpoint_duration_ms and checkpoint_size_bytes")
	f.DurationVar(&o.Interval, "interval", o.Interval, "execution.checkpointing.interval of the checkpointing and recovery runs")
	return cmd
}
