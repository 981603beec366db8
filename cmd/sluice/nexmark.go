package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

func newNexmarkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "nexmark", Short: "Nexmark benchmark tools"}
	cmd.AddCommand(newNexmarkGenerateCmd(g))
	return cmd
}

func newNexmarkGenerateCmd(*globals) *cobra.Command {
	var events, seed, eventRate int64
	var rate float64
	var baseTime, output string
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write the events of a nexmark source as JSON lines, one object per event",
		Long: `Write events 0 to N-1 of the nexmark source with the same seed and rates, one JSON
object per line: {"event_type": 0|1|2, "person": {...}|null, "auction": {...}|null, "bid": {...}|null}.
A file source with format json reading this file yields the same records as the source.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if events <= 0 {
				return fmt.Errorf("--events %d: want a positive number of events", events)
			}
			if rate < 0 {
				return fmt.Errorf("--rate %v: want events a second >= 0", rate)
			}
			if eventRate < 0 {
				return fmt.Errorf("--first-event-rate %d: want events a second of event time >= 0", eventRate)
			}
			cfg, err := dataflow.NexmarkConfig(seed, rate, eventRate, baseTime)
			if err != nil {
				return fmt.Errorf("--base-time %q: %w", baseTime, err)
			}
			var w io.Writer = cmd.OutOrStdout()
			if output != "" {
				f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					return fmt.Errorf("--output: %w", err)
				}
				defer f.Close()
				w = f
				if err := dataflow.WriteNexmarkJSON(cmd.Context(), w, cfg, events); err != nil {
					return fmt.Errorf("write %s: %w", output, err)
				}
				return f.Close()
			}
			return dataflow.WriteNexmarkJSON(cmd.Context(), w, cfg, events)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&events, "events", 0, "number of events (required)")
	f.Int64Var(&seed, "seed", 0, "seed: the source option seed")
	f.Float64Var(&rate, "rate", 0, "the source option rate: sets the event-time rate when --first-event-rate is not given")
	f.Int64Var(&eventRate, "first-event-rate", 0, "events a second of event time (default: --rate, else 10000)")
	f.StringVar(&baseTime, "base-time", "", "event time of the first event, RFC 3339 (default 2025-01-01T00:00:00Z)")
	f.StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return cmd
}
