package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/network"
	"github.com/sluice-dev/sluice/internal/security/ca"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
	"github.com/sluice-dev/sluice/internal/transport"
)

func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure parts of sluice on this machine"}
	cmd.AddCommand(newBenchExchangeCmd(g), newBenchRESTCmd(g), newBenchCheckpointCmd(g), newBenchNexmarkCmd(g))
	return cmd
}

func newBenchExchangeCmd(g *globals) *cobra.Command {
	var records int64
	var size int
	var useTLS, withCodec bool
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
			if withCodec {
				opts.Encode, opts.Decode = benchCodec(records, size)
			}
			viaTransport(cmd.Context(), &opts, transport.Plaintext())
			if !useTLS {
				res, err := network.RunExchangeBench(cmd.Context(), opts)
				if err != nil {
					return err
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			// Plaintext and TLS back to back in one run, so the ratio is
			// not skewed by what else the machine does at another time.
			plain, err := network.RunExchangeBench(cmd.Context(), opts)
			if err != nil {
				return err
			}
			opts.ServerTLS, opts.ClientTLS, err = benchTLS(g)
			if err != nil {
				return err
			}
			sec := transport.Plaintext()
			sec.Set(transport.Data, opts.ServerTLS, opts.ClientTLS)
			viaTransport(cmd.Context(), &opts, sec)
			res, err := network.RunExchangeBench(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(tlsBenchResult{
				BenchResult: res, PlainRecordsPerSec: plain.RecordsPerSec, PlainMBPerSec: plain.MBPerSec,
				PlainRawMBPerSec: plain.RawMBPerSec, Ratio: res.RecordsPerSec / plain.RecordsPerSec,
			})
		},
	}
	cmd.Flags().Int64Var(&records, "records", 10_000_000, "records to send")
	cmd.Flags().IntVar(&size, "record-size", 100, "serialized size of a record in bytes")
	cmd.Flags().BoolVar(&withCodec, "codec", false, "also encode and decode every record with the record codec, as tasks do (the codec alone: go test -bench Codec ./internal/dataflow)")
	cmd.Flags().BoolVar(&useTLS, "tls", false, "measure with internal mutual TLS (per-process identities from a throwaway cluster CA), after a plaintext run in the same process")
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

// tlsBenchResult is the TLS measurement with the plaintext one of the same
// run beside it.
type tlsBenchResult struct {
	network.BenchResult
	PlainRecordsPerSec float64 `json:"plain_records_per_sec"`
	PlainMBPerSec      float64 `json:"plain_mb_per_sec"`
	PlainRawMBPerSec   float64 `json:"plain_raw_mb_per_sec"`
	Ratio              float64 `json:"tls_to_plain_records_ratio"`
}

// benchTLS builds the data-exchange TLS configs two TaskManagers of one
// cluster would use: per-process certificates from a cluster CA, mutual
// authentication, identity checks, TLS 1.3.
func benchTLS(g *globals) (*tls.Config, *tls.Config, error) {
	authority, err := ca.New("", 24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	opts, err := tlsconf.InternalOptions(config.New())
	if err != nil {
		return nil, nil, err
	}
	stores := make([]*tlsconf.Store, 2)
	for i, id := range []string{"bench-consumer", "bench-producer"} {
		cert, err := authority.IssueKeyPair(ca.RoleTaskManager, id, nil, time.Hour)
		if err != nil {
			return nil, nil, err
		}
		stores[i] = tlsconf.NewStoreFromMaterial(cert, authority.Pool(), opts, g.log)
	}
	policy := tlsconf.PeerPolicy{Allow: []tlsconf.Role{tlsconf.RoleTaskManager}}
	return stores[0].ServerConfig(policy), stores[1].ClientConfig(policy), nil
}

// viaTransport makes the exchange use the TaskManagers' transport: the
// same listener, dialer and TLS wrapping as a running cluster.
func viaTransport(ctx context.Context, o *network.BenchOptions, sec *transport.Security) {
	o.Listen = func() (net.Listener, error) { return sec.Listen(ctx, transport.Data, "127.0.0.1:0") }
	o.Dial = network.Dialer(sec.Dialer(transport.Data))
}
