package network

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// TestTimedRecordsInOrder mixes records with and without timestamps, watermarks and an
// oversized timed record on one channel: each comes out of the gate in order and as the
// kind it was written, with its timestamp; NextDelivery's view keeps the timestamp and
// Next's drops it.
func TestTimedRecordsInOrder(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{BufferSize: 256, MaxFrameSize: 64 << 10})
	id := ChannelID{Job: "timed", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{FlushTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	type item struct {
		kind event.DeliveryKind
		ts   int64
		rec  string
	}
	var want []item
	type write struct {
		timed, event bool
		b            []byte
	}
	var writes []write
	for i := range 200 {
		rec := fmt.Sprintf("r%d", i)
		switch {
		case i == 150:
			rec = string(bytes.Repeat([]byte{'y'}, 1000)) // larger than a buffer
			fallthrough
		case i%7 < 4:
			ts := int64(i)*1000 - 5000
			writes = append(writes, write{timed: true, b: append(binary.AppendVarint(nil, ts), rec...)})
			want = append(want, item{event.DeliverTimedRecord, ts, rec})
		default:
			writes = append(writes, write{b: []byte(rec)})
			want = append(want, item{kind: event.DeliverRecord, rec: rec})
		}
		if i%50 == 49 {
			writes = append(writes, write{event: true, b: event.Append(nil, event.Event{Kind: event.KindWatermark, Watermark: int64(i)})})
			want = append(want, item{kind: event.DeliverEvent, ts: int64(i)})
		}
	}
	writes = append(writes, write{event: true, b: event.Append(nil, event.Event{Kind: event.KindWatermark, Watermark: math.MaxInt64})})
	want = append(want, item{kind: event.DeliverEvent, ts: math.MaxInt64})
	// The writer waits for credit, so it writes while the test reads.
	written := make(chan error, 1)
	go func() {
		for _, wr := range writes {
			var err error
			switch {
			case wr.event:
				err = w.WriteEvent(wr.b)
			case wr.timed:
				err = w.WriteTimedRecord(wr.b)
			default:
				err = w.WriteRecord(wr.b)
			}
			if err != nil {
				written <- err
				return
			}
		}
		written <- w.Close()
	}()
	for i, wi := range want {
		d, err := gate.NextDelivery(ctx, nil)
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		var got item
		got.kind = d.Kind
		switch d.Kind {
		case event.DeliverTimedRecord:
			ts, k := binary.Varint(d.Data)
			got.ts, got.rec = ts, string(d.Data[k:])
		case event.DeliverRecord:
			got.rec = string(d.Data)
		case event.DeliverEvent:
			e, err := event.Decode(d.Data)
			if err != nil {
				t.Fatal(err)
			}
			got.ts = e.Watermark
		}
		if got != wi {
			t.Fatalf("item %d: got %v %d %.20q, want %v %d %.20q", i, got.kind, got.ts, got.rec, wi.kind, wi.ts, wi.rec)
		}
	}
	if d, err := gate.NextDelivery(ctx, nil); err != nil || d.Kind != event.DeliverEnd {
		t.Fatalf("after the items: %v %v", d, err)
	}
	if _, err := gate.NextDelivery(ctx, nil); err != io.EOF {
		t.Fatalf("after the end: %v", err)
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
}

// TestNextDropsTimestamps: the record-only view of the gate strips timestamps.
func TestNextDropsTimestamps(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{})
	id := ChannelID{Job: "timednext", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteTimedRecord(append(binary.AppendVarint(nil, 1<<40), "a"...))
	w.WriteTimedRecord(append(binary.AppendVarint(nil, -1), "b"...))
	w.WriteRecord([]byte("c"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "b", "c"} {
		if rec, err := gate.Next(ctx); err != nil || string(rec) != want {
			t.Fatalf("%q %v, want %q", rec, err, want)
		}
	}
}

// TestBadTimedFrame: a DATA_TIMED frame whose record has no timestamp fails the channel
// with a reason the producer receives.
func TestBadTimedFrame(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	gate := srv.RegisterGate(ChannelID{Job: "bad", Edge: 7}.gateID(), 1) // rawExchangeAs's channel
	defer gate.Close()
	in := append(header(FrameDataTimed, 2), 1, 0x80)
	got := rawExchangeAs(t, srv.addr, in, true, 0)
	if want := "bad DATA_TIMED frame: timed record at offset 1 has no well-formed timestamp"; !bytes.Contains([]byte(got), []byte(want)) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
