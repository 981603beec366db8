package network

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// BenchmarkExchange sends b.N 100-byte records over one plaintext loopback
// connection through the full data plane.
func BenchmarkExchange(b *testing.B) {
	benchmarkExchange(b, BenchOptions{})
}

// BenchmarkExchangeTLS is BenchmarkExchange over TLS 1.3.
func BenchmarkExchangeTLS(b *testing.B) {
	srvTLS, cliTLS := testTLSConfigs(b)
	benchmarkExchange(b, BenchOptions{ServerTLS: srvTLS, ClientTLS: cliTLS})
}

// BenchmarkExchangeNext is BenchmarkExchange read with the record-only
// InputGate.Next rather than NextDelivery.
func BenchmarkExchangeNext(b *testing.B) {
	benchmarkExchange(b, BenchOptions{recordOnly: true})
}

// BenchmarkWriterEvent measures what a barrier costs a channel: each
// operation writes one 100-byte record and then an event, so the event
// flushes a partly filled buffer before its own frame, the worst case of
// a checkpoint. The consumer reads with NextDelivery.
func BenchmarkWriterEvent(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	defer func() { cancel(); <-served }()
	id := ChannelID{Job: "bench", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, tcpDial, l.Addr().String(), id, WriterOptions{FlushTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	received := make(chan int, 1)
	go func() {
		events := 0
		for {
			d, err := gate.NextDelivery(ctx, nil)
			if err != nil {
				received <- events
				return
			}
			if d.Kind == event.DeliverEvent {
				events++
			}
		}
	}()
	rec := make([]byte, 100)
	ev := event.Append(nil, event.Event{Kind: event.KindBarrier, Barrier: event.Barrier{ID: 1, Timestamp: 1}})
	n := 0
	for b.Loop() {
		if err := w.WriteRecord(rec); err != nil {
			b.Fatal(err)
		}
		if err := w.WriteEvent(ev); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if got := <-received; got != n {
		b.Fatalf("received %d events, sent %d", got, n)
	}
}

func benchmarkExchange(b *testing.B, o BenchOptions) {
	o.Records = int64(max(b.N, 1000))
	o.RecordSize = 100
	res, err := RunExchangeBench(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(100)
	b.ReportMetric(res.RecordsPerSec, "records/s")
	b.ReportMetric(res.MBPerSec, "MB/s")
	b.ReportMetric(res.RawMBPerSec, "raw-MB/s")
	b.ReportMetric(res.MBPerSec/res.RawMBPerSec*100, "%raw")
}

// BenchmarkFrameCodec encodes and decodes 32 KiB DATA frames of 100-byte
// records in memory: "api" through the allocating exported functions, "reuse"
// the way the data plane does it, with a reused buffer.
func BenchmarkFrameCodec(b *testing.B) {
	payload := bytes.Repeat(appendRecord(nil, make([]byte, 100)), (32<<10)/101)
	b.Run("api", func(b *testing.B) {
		var wire bytes.Buffer
		br := bufio.NewReaderSize(&wire, 64<<10)
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			wire.Reset()
			br.Reset(&wire)
			if err := WriteFrame(&wire, Frame{Type: FrameData, Payload: payload}); err != nil {
				b.Fatal(err)
			}
			f, err := ReadFrame(br, DefaultMaxFrameSize)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := validateRecords(f.Payload, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reuse", func(b *testing.B) {
		var wire bytes.Buffer
		br := bufio.NewReaderSize(&wire, 64<<10)
		out := append(make([]byte, headerSize), payload...)
		in := make([]byte, len(payload))
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			wire.Reset()
			br.Reset(&wire)
			putHeader(out, FrameData, len(payload))
			wire.Write(out)
			_, n, err := readHeader(br, DefaultMaxFrameSize)
			if err != nil {
				b.Fatal(err)
			}
			if err := readPayload(br, FrameData, in[:n]); err != nil {
				b.Fatal(err)
			}
			if _, err := validateRecords(in[:n], false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
