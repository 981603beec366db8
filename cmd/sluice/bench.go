package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/network"
)

func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure parts of sluice on this machine"}
	cmd.AddCommand(newBenchExchangeCmd(g))
	return cmd
}

func newBenchExchangeCmd(g *globals) *cobra.Command {
	var records int64
	var size int
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "Send records between two tasks over one loopback connection of the data plane; compare with a bare socket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if records <= 0 {
				return fmt.Errorf("--records %d: want a positive number", records)
			}
			if size < 16 || size > 1<<20 {
				return fmt.Errorf("--record-size %d: want 16..1048576 bytes", size)
			}
			opts := network.BenchOptions{Records: records, RecordSize: size}
			opts.Encode, opts.Decode = benchCodec(records, size)
			res, err := network.RunExchangeBench(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	cmd.Flags().Int64Var(&records, "records", 10_000_000, "records to send")
	cmd.Flags().IntVar(&size, "record-size", 100, "serialized size of a record in bytes")
	return cmd
}

// benchCodec builds records the way tasks do: a typed row (a sequence number
// and a payload) through the record codec, sized so the encoded record has
// the requested size; decoding checks each record on the receiving side.
func benchCodec(records int64, size int) (func([]byte, int64) []byte, func([]byte) error) {
	overhead := len(dataflow.AppendRecord(nil, dataflow.Record{dataflow.Int(records), dataflow.Bytes(nil)}))
	pad := make([]byte, max(size-overhead-1, 0))
	for i := range pad {
		pad[i] = byte('a' + i%26)
	}
	rec := dataflow.Record{dataflow.Int(0), dataflow.Bytes(pad)}
	enc := func(dst []byte, i int64) []byte {
		rec[0] = dataflow.Int(i)
		return dataflow.AppendRecord(dst[:0], rec)
	}
	var out dataflow.Record
	dec := func(b []byte) error { return dataflow.DecodeRecord(b, &out) }
	return enc, dec
}
