package network

import (
	"bytes"
	"context"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// benchGate is a one-channel gate without a connection, fed by the
// benchmark itself, so that the consumer's record path is measured alone.
func benchGate() (*InputGate, *inputChannel, []byte, int) {
	const bufSize = 32 << 10
	srv := NewServer(ServerOptions{BufferSize: bufSize})
	g := srv.RegisterGate(GateID{Job: "bench"}, 1)
	ch := &inputChannel{gate: g, bufSize: bufSize, free: make(chan []byte, 8), kick: make(chan struct{}, 1)}
	rec := appendRecord(nil, make([]byte, 100))
	per := bufSize / len(rec)
	return g, ch, bytes.Repeat(rec, per), per
}

// BenchmarkGateRecords measures the consumer's cost per 100-byte record:
// slicing records out of 32 KiB buffers and taking the next buffer from the
// queue, with the record-only Next and with NextDelivery.
func BenchmarkGateRecords(b *testing.B) {
	ctx := context.Background()
	b.Run("Next", func(b *testing.B) {
		g, ch, buf, per := benchGate()
		b.SetBytes(100)
		for left := 0; b.Loop(); left-- {
			if left == 0 {
				g.queue <- delivery{ch: ch, buf: buf}
				left = per
			}
			if rec, err := g.Next(ctx); err != nil || len(rec) != 100 {
				b.Fatal(err)
			}
		}
	})
	b.Run("NextDelivery", func(b *testing.B) {
		g, ch, buf, per := benchGate()
		b.SetBytes(100)
		for left := 0; b.Loop(); left-- {
			if left == 0 {
				g.queue <- delivery{ch: ch, buf: buf}
				left = per
			}
			if d, err := g.NextDelivery(ctx, nil); err != nil || d.Kind != event.DeliverRecord || len(d.Data) != 100 {
				b.Fatal(err)
			}
		}
	})
}
