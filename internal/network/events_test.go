package network

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// onTransports runs f over plaintext and over mutual TLS.
func onTransports(t *testing.T, f func(t *testing.T, tlsConf ...*tls.Config)) {
	t.Run("plain", func(t *testing.T) { f(t) })
	t.Run("tls", func(t *testing.T) {
		srvTLS, cliTLS := testTLSConfigs(t)
		f(t, srvTLS, cliTLS)
	})
}

func barrier(id int64) []byte {
	return event.Append(nil, event.Event{Kind: event.KindBarrier, Barrier: event.Barrier{ID: id, Timestamp: 1700000000000 + id}})
}

// elem is one element a producer sends: a record, or an event if ev is set.
type elem struct {
	data []byte
	ev   bool
}

// produce writes script to w and closes it, counting the elements written.
func produce(w *Writer, script []elem, written *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		for _, e := range script {
			var err error
			if e.ev {
				err = w.WriteEvent(e.data)
			} else {
				err = w.WriteRecord(e.data)
			}
			if err != nil {
				w.Abort()
				done <- err
				return
			}
			if written != nil {
				written.Add(1)
			}
		}
		done <- w.Close()
	}()
	return done
}

// expect checks that d is element i of a channel's script.
func expect(t *testing.T, ch int, i int, script []elem, d event.Delivery) {
	t.Helper()
	if i >= len(script) {
		if d.Kind != event.DeliverEnd {
			t.Fatalf("channel %d: got %v %q after its %d elements, want the end", ch, d.Kind, d.Data, len(script))
		}
		return
	}
	want := event.DeliverRecord
	if script[i].ev {
		want = event.DeliverEvent
	}
	if d.Kind != want || !bytes.Equal(d.Data, script[i].data) {
		t.Fatalf("channel %d element %d: got %v %q, want %v %q", ch, i, d.Kind, d.Data, want, script[i].data)
	}
}

func TestEventsInOrderWithRecords(t *testing.T) {
	onTransports(t, func(t *testing.T, tlsConf ...*tls.Config) {
		ctx := testCtx(t)
		srv := startServer(t, ServerOptions{BufferSize: 512, CreditsPerChannel: 2}, tlsConf...)
		id := ChannelID{Job: "events", Edge: 1}
		gate := srv.RegisterGate(id.gateID(), 1)
		defer gate.Close()
		w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Records of varied sizes fill 512-byte buffers to different
		// points, so events fall right after full buffers, partly filled
		// ones and a record larger than a buffer.
		var script []elem
		events := 0
		for i := range 3000 {
			script = append(script, elem{data: record(1, 0, i)})
			switch {
			case i == 1500:
				script = append(script, elem{data: bytes.Repeat([]byte{'L'}, 2000)})
				script = append(script, elem{data: barrier(int64(i)), ev: true})
				events++
			case i%7 == 0:
				script = append(script, elem{data: barrier(int64(i + 1)), ev: true})
				events++
			case i%501 == 0:
				script = append(script, elem{data: event.Append(nil, event.Event{Kind: event.KindCancelBarrier, Barrier: event.Barrier{ID: int64(i)}}), ev: true})
				script = append(script, elem{data: barrier(int64(i + 2)), ev: true}, elem{data: barrier(int64(i + 3)), ev: true})
				events += 3
			}
		}
		script = append(script, elem{data: event.Append(nil, event.Event{Kind: event.KindEndOfData}), ev: true})
		events++
		sent := produce(w, script, nil)

		for i := 0; ; i++ {
			d, err := gate.NextDelivery(ctx, nil)
			if err == io.EOF {
				if i != len(script)+1 {
					t.Fatalf("io.EOF after %d deliveries, want %d", i, len(script)+1)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Channel != 0 {
				t.Fatalf("delivery on channel %d of a one-channel gate", d.Channel)
			}
			expect(t, 0, i, script, d)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if _, err := gate.NextDelivery(ctx, nil); err != io.EOF {
			t.Fatalf("NextDelivery after the end: %v", err)
		}
		if st := srv.Stats(); st.EventsReceived != int64(events) || st.RecordsReceived != 3001 {
			t.Fatalf("stats %+v, want %d events and 3001 records", st, events)
		}
	})
}

// TestBlockHoldsChannel blocks channel A at its barrier: B flows to its end,
// A's producer stops after its credits, and Unblock releases A in order.
func TestBlockHoldsChannel(t *testing.T) {
	onTransports(t, func(t *testing.T, tlsConf ...*tls.Config) {
		ctx := testCtx(t)
		const bufSize, credits = 1024, 2
		srv := startServer(t, ServerOptions{BufferSize: bufSize, CreditsPerChannel: credits}, tlsConf...)
		gid := GateID{Job: "align", Attempt: 1, Vertex: 4, Subtask: 1}
		gate, err := srv.RegisterGateLayout(gid, []GateInput{
			{Edge: 1, Channels: 1, Forward: true},
			{Edge: 2, Channels: 2, Input: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer gate.Close()
		if gate.Channels() != 3 || gate.Input(0) != 0 || gate.Input(1) != 1 || gate.Input(2) != 1 {
			t.Fatalf("layout: %d channels, inputs %d %d %d", gate.Channels(), gate.Input(0), gate.Input(1), gate.Input(2))
		}
		connect := func(edge, source int) *Writer {
			w, err := Connect(ctx, srv.dial, srv.addr, ChannelID{Job: "align", Attempt: 1, Edge: edge, Source: source, Target: 1, Vertex: 4}, WriterOptions{FlushTimeout: -1})
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		// Channel indexes: A is the forward edge 1 from the own subtask
		// (source 1), B0 and B1 are edge 2 from sources 0 and 1.
		const a = 0
		scripts := make([][]elem, 3)
		for i := range 20 {
			scripts[a] = append(scripts[a], elem{data: record(1, 1, i)})
		}
		const beforeBarrier = 20
		scripts[a] = append(scripts[a], elem{data: barrier(1), ev: true})
		for i := beforeBarrier; i < 3000; i++ {
			scripts[a] = append(scripts[a], elem{data: append(fmt.Appendf(nil, "a%d;", i), make([]byte, 90)...)})
		}
		for ch := 1; ch <= 2; ch++ {
			for i := range 2000 {
				scripts[ch] = append(scripts[ch], elem{data: record(2, ch-1, i)})
				if i == 1000 {
					scripts[ch] = append(scripts[ch], elem{data: barrier(1), ev: true})
				}
			}
		}
		wa := connect(1, 1)
		var writtenA atomic.Int64
		sent := []<-chan error{produce(wa, scripts[a], &writtenA), produce(connect(2, 0), scripts[1], nil), produce(connect(2, 1), scripts[2], nil)}

		next := make([]int, 3)
		read := func() event.Delivery {
			t.Helper()
			d, err := gate.NextDelivery(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			expect(t, int(d.Channel), next[d.Channel], scripts[d.Channel], d)
			next[d.Channel]++
			return d
		}
		// Up to A's barrier, then block A.
		for {
			if d := read(); d.Channel == a && d.Kind == event.DeliverEvent {
				break
			}
		}
		gate.Block(a)
		// B flows to its end while A is held.
		for ended := 0; ended < 2; {
			d := read()
			if d.Channel == a {
				t.Fatalf("blocked channel A delivered %v %q", d.Kind, d.Data)
			}
			if d.Kind == event.DeliverEnd {
				ended++
			}
		}
		if next[1] != len(scripts[1])+1 || next[2] != len(scripts[2])+1 {
			t.Fatalf("B channels delivered %d and %d elements", next[1], next[2])
		}
		// A's producer waits for credit: its held buffers kept theirs.
		deadline := time.Now().Add(10 * time.Second)
		for wa.blockedSince.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("A's writer never waited for credit (%d elements written)", writtenA.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if got, limit := writtenA.Load()-beforeBarrier-1, int64((credits+1)*bufSize/93); got > limit {
			t.Fatalf("A wrote %d records after its barrier while blocked, want at most %d", got, limit)
		}
		// Nothing to deliver: the task is woken for its mail instead.
		wake := make(chan struct{})
		close(wake)
		if d, err := gate.NextDelivery(ctx, wake); !errors.Is(err, event.ErrWoken) {
			t.Fatalf("NextDelivery with only a blocked channel: %v %v, want ErrWoken", d, err)
		}
		if n := len(gate.held[a]); n == 0 || n > credits {
			t.Fatalf("%d buffers held for A, want 1..%d", n, credits)
		}
		gate.Unblock(a)
		for {
			d, err := gate.NextDelivery(ctx, nil)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Channel != a {
				t.Fatalf("channel %d delivered after its end", d.Channel)
			}
			expect(t, a, next[a], scripts[a], d)
			next[a]++
		}
		if next[a] != len(scripts[a])+1 {
			t.Fatalf("A delivered %d elements, want %d", next[a], len(scripts[a])+1)
		}
		for _, s := range sent {
			if err := <-s; err != nil {
				t.Fatal(err)
			}
		}
		if wa.BackPressured() <= 0 {
			t.Fatal("A's writer reports no back-pressure")
		}
	})
}

// TestBlockMidBuffer blocks a channel between two records of one buffer:
// the rest of the buffer waits, also when the channel is blocked again
// while its released elements are still queued for delivery.
func TestBlockMidBuffer(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{})
	gid := GateID{Job: "mid", Vertex: 2}
	gate, err := srv.RegisterGateLayout(gid, []GateInput{{Edge: 1, Channels: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	w := make([]*Writer, 2)
	for s := range w {
		if w[s], err = Connect(ctx, srv.dial, srv.addr, ChannelID{Job: "mid", Edge: 1, Source: s, Vertex: 2}, WriterOptions{FlushTimeout: -1}); err != nil {
			t.Fatal(err)
		}
	}
	var script []elem
	for i := range 10 {
		script = append(script, elem{data: record(1, 0, i)})
	}
	script = append(script, elem{data: barrier(1), ev: true}, elem{data: record(1, 0, 10)})
	// One buffer of ten records, the barrier, then a buffer sent by Close.
	if err := <-produce(w[0], script, nil); err != nil {
		t.Fatal(err)
	}
	next := make([]int, 2)
	scripts := [][]elem{script, script[:3]}
	read := func(wake <-chan struct{}) (event.Delivery, error) {
		d, err := gate.NextDelivery(ctx, wake)
		if err == nil {
			expect(t, int(d.Channel), next[d.Channel], scripts[d.Channel], d)
			next[d.Channel]++
		}
		return d, err
	}
	for next[0] < 4 {
		read(nil)
	}
	gate.Block(0)
	woken := make(chan struct{})
	close(woken)
	if d, err := read(woken); !errors.Is(err, event.ErrWoken) {
		t.Fatalf("got %v %v from a blocked channel, want ErrWoken", d, err)
	}
	// Channel 1 flows meanwhile.
	if err := <-produce(w[1], scripts[1], nil); err != nil {
		t.Fatal(err)
	}
	for next[1] < 4 {
		if d, err := read(nil); err != nil || d.Channel != 1 {
			t.Fatalf("got %v %v, want channel 1", d, err)
		}
	}
	gate.Unblock(0)
	if d, _ := read(nil); d.Channel != 0 || next[0] != 5 {
		t.Fatalf("after Unblock: %v, element %d", d, next[0])
	}
	// Blocked again while the rest of the buffer, the barrier and the last
	// buffer are released but not yet delivered.
	gate.Block(0)
	if d, err := read(woken); !errors.Is(err, event.ErrWoken) {
		t.Fatalf("got %v %v from a blocked channel, want ErrWoken", d, err)
	}
	gate.Unblock(0)
	gate.Unblock(0) // not blocked: nothing happens
	for {
		_, err := read(nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if next[0] != len(script)+1 {
		t.Fatalf("channel 0 delivered %d elements, want %d", next[0], len(script)+1)
	}
}

func TestEndOfPartitionPerChannel(t *testing.T) {
	onTransports(t, func(t *testing.T, tlsConf ...*tls.Config) {
		ctx := testCtx(t)
		srv := startServer(t, ServerOptions{}, tlsConf...)
		gid := GateID{Job: "eop", Attempt: 2, Vertex: 3, Subtask: 0}
		gate, err := srv.RegisterGateLayout(gid, []GateInput{{Edge: 4, Channels: 2}, {Edge: 1, Channels: 3}})
		if err != nil {
			t.Fatal(err)
		}
		defer gate.Close()
		// Index of (edge, source): edge 4 first, then edge 1.
		index := map[[2]int]int{{4, 0}: 0, {4, 1}: 1, {1, 0}: 2, {1, 1}: 3, {1, 2}: 4}
		writers := map[[2]int]*Writer{}
		for k := range index {
			w, err := Connect(ctx, srv.dial, srv.addr, ChannelID{Job: "eop", Attempt: 2, Edge: k[0], Source: k[1], Vertex: 3}, WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			writers[k] = w
		}
		for _, k := range [][2]int{{1, 2}, {4, 0}, {1, 0}, {4, 1}, {1, 1}} {
			w := writers[k]
			if err := w.WriteRecord([]byte("last")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			for _, want := range []event.DeliveryKind{event.DeliverRecord, event.DeliverEnd} {
				d, err := gate.NextDelivery(ctx, nil)
				if err != nil || int(d.Channel) != index[k] || d.Kind != want {
					t.Fatalf("edge %d source %d: got %+v %v, want %v on channel %d", k[0], k[1], d, err, want, index[k])
				}
			}
		}
		for range 2 {
			if d, err := gate.NextDelivery(ctx, nil); err != io.EOF {
				t.Fatalf("after every end: %+v %v, want io.EOF", d, err)
			}
		}
	})
}

// TestGateLayoutRefusals checks the layout and the channels it admits.
func TestGateLayoutRefusals(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{})
	gid := GateID{Job: "lay", Vertex: 2, Subtask: 1}
	for _, c := range []struct {
		layout []GateInput
		want   string
	}{
		{[]GateInput{{Edge: 1, Channels: 0}}, "edge 1 has 0 channels, want at least 1"},
		{[]GateInput{{Edge: 1, Channels: 2}, {Edge: 1, Channels: 1}}, "edge 1 appears twice"},
		{[]GateInput{{Edge: 1, Channels: 2, Forward: true}}, "forward edge 1 has 2 channels, want 1"},
		{[]GateInput{{Edge: -1, Channels: 1}}, "edge -1, want >= 0"},
		{[]GateInput{{Edge: 1, Channels: 1, Input: -2}}, "feeds input -2"},
		{[]GateInput{{Edge: 1, Channels: 1 << 20}, {Edge: 2, Channels: 1}}, "more than 1048576 channels"},
	} {
		if _, err := srv.RegisterGateLayout(gid, c.layout); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("layout %+v: %v, want %q", c.layout, err, c.want)
		}
	}
	gate, err := srv.RegisterGateLayout(gid, []GateInput{{Edge: 1, Channels: 2}, {Edge: 2, Channels: 1, Forward: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	for _, c := range []struct {
		edge, source int
		want         string
	}{
		{9, 0, "edge 9 is not an input of gate lay/0 vertex 2 subtask 1"},
		{1, 2, "edge 1 has 2 sources: source 2 is out of range"},
		{2, 0, "edge 2 is a forward edge into subtask 1: source 0 may not connect to it"},
	} {
		_, err := Connect(ctx, srv.dial, srv.addr, ChannelID{Job: "lay", Edge: c.edge, Source: c.source, Target: 1, Vertex: 2}, WriterOptions{})
		var rej *RejectedError
		if !errors.As(err, &rej) || !strings.Contains(rej.Reason, c.want) {
			t.Errorf("edge %d source %d: %v, want a refusal %q", c.edge, c.source, err, c.want)
		}
	}
	// The forward edge's own subtask is admitted.
	w, err := Connect(ctx, srv.dial, srv.addr, ChannelID{Job: "lay", Edge: 2, Source: 1, Target: 1, Vertex: 2}, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteRecord([]byte("fwd"))
	w.Close()
	if d, err := gate.NextDelivery(ctx, nil); err != nil || d.Channel != 2 || string(d.Data) != "fwd" {
		t.Fatalf("forward channel: %+v %v", d, err)
	}
}

// TestNextSkipsEvents: the record-only Next, which the dataflow runtime
// still uses, passes over events and returns io.EOF as before.
func TestNextSkipsEvents(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{CreditsPerChannel: 1})
	id := ChannelID{Job: "skip", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var script []elem
	for i := range 50 {
		script = append(script, elem{data: barrier(int64(i + 1)), ev: true}, elem{data: record(1, 0, i)})
	}
	sent := produce(w, script, nil)
	for i := 0; ; i++ {
		rec, err := gate.Next(ctx)
		if err == io.EOF {
			if i != 50 {
				t.Fatalf("%d records", i)
			}
			break
		}
		if err != nil || !bytes.Equal(rec, record(1, 0, i)) {
			t.Fatalf("record %d: %q %v", i, rec, err)
		}
	}
	// With one credit, the producer could only finish if every skipped
	// event gave its credit back.
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

func TestWriteEventRefusesMalformed(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerOptions{})
	id := ChannelID{Job: "wev", Edge: 1}
	gate := srv.RegisterGate(id.gateID(), 1)
	defer gate.Close()
	w, err := Connect(ctx, srv.dial, srv.addr, id, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, {9}, {byte(event.KindWatermarkStatus), 2}, barrier(1)[:10], make([]byte, 100)} {
		if err := w.WriteEvent(bad); err == nil || !strings.Contains(err.Error(), "refusing to send a malformed event") {
			t.Fatalf("WriteEvent(%x): %v", bad, err)
		}
	}
	// The channel stays usable.
	if err := w.WriteRecord([]byte("r")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEvent(barrier(5)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.BytesSent() != headerSize+2+headerSize+18 {
		t.Fatalf("BytesSent = %d", w.BytesSent())
	}
	if err := w.WriteEvent(barrier(6)); err == nil {
		t.Fatal("WriteEvent after Close succeeded")
	}
	for _, want := range []event.DeliveryKind{event.DeliverRecord, event.DeliverEvent, event.DeliverEnd} {
		if d, err := gate.NextDelivery(ctx, nil); err != nil || d.Kind != want {
			t.Fatalf("got %+v %v, want %v", d, err, want)
		}
	}
}

// TestBadEventFrames: an EVENT without credit is refused like DATA without
// credit, and a malformed EVENT fails its connection, naming the frame, and
// the task reading the gate, while other connections are unharmed.
func TestBadEventFrames(t *testing.T) {
	onTransports(t, func(t *testing.T, tlsConf ...*tls.Config) {
		ctx := testCtx(t)
		const credits = 2
		srv := startServer(t, ServerOptions{CreditsPerChannel: credits}, tlsConf...)
		data := append(header(FrameData, 2), 1, 'x')
		ev := append(header(FrameEvent, 18), barrier(3)...)
		cases := []struct {
			name string
			in   []byte
			want string
		}{
			{"data without credit", bytes.Repeat(data, credits+1), "DATA frame without credit: the producer ignores back-pressure"},
			{"event without credit", append(bytes.Repeat(data, credits), ev...), "EVENT frame without credit: the producer ignores back-pressure"},
			{"events without credit", bytes.Repeat(ev, credits+1), "EVENT frame without credit"},
			{"unknown kind", append(header(FrameEvent, 1), 9), "bad EVENT frame: event: unknown kind 9"},
			{"empty", header(FrameEvent, 0), "bad EVENT frame: event: empty payload"},
			{"short barrier", append(header(FrameEvent, 17), barrier(3)[:17]...), "bad EVENT frame: event: BARRIER has 17 bytes, want 18"},
			{"barrier id 0", append(header(FrameEvent, 18), append([]byte{1}, make([]byte, 17)...)...), "bad EVENT frame: event: BARRIER has checkpoint id 0"},
			{"watermark status", append(header(FrameEvent, 2), 5, 9), "bad EVENT frame: event: WATERMARK_STATUS has unknown status 9"},
			{"oversized", header(FrameEvent, 100), "EVENT frame of 100 bytes exceeds the limit of 32"},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				id := ChannelID{Job: "badev", Edge: 1, Source: i}
				gate := srv.RegisterGate(id.gateID(), 1)
				defer gate.Close()
				got := rawFramesAs(t, srv, id, c.in)
				if !strings.Contains(got, c.want) {
					t.Fatalf("ERROR frame %q, want %q", got, c.want)
				}
				// The consumer's task fails with the same reason.
				var err error
				for err == nil {
					_, err = gate.NextDelivery(ctx, nil)
				}
				if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "channel badev/0 edge 1") {
					t.Fatalf("gate: %v, want an error naming the channel and %q", err, c.want)
				}
			})
		}
	})
}

// rawFramesAs connects as channel id over srv's transport, writes in after
// the handshake and returns the reason of the ERROR frame it is answered
// with.
func rawFramesAs(t *testing.T, srv *testServer, id ChannelID, in []byte) string {
	t.Helper()
	ctx := testCtx(t)
	c, err := srv.dial(ctx, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	WriteFrame(c, Frame{Type: FrameHello, Payload: appendHello(nil, id)})
	br := bufio.NewReader(c)
	if f, err := ReadFrame(br, 0); err != nil || f.Type != FrameAccept {
		t.Fatalf("hello: %v %v", f.Type, err)
	}
	c.Write(in)
	for {
		f, err := ReadFrame(br, 0)
		if err != nil {
			t.Fatalf("answer: %v, want an ERROR frame", err)
		}
		if f.Type == FrameError {
			return string(f.Payload)
		}
		if f.Type != FrameCredit {
			t.Fatalf("answer: %v frame, want ERROR", f.Type)
		}
	}
}

// TestGateBlockingModel drives the gate's consumer side with random
// interleavings of arrivals, reads, Block and Unblock, and checks that each
// channel's elements come out complete, in order, never while the channel
// is blocked, and that every credit comes back.
func TestGateBlockingModel(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		const credits = 3
		srv := NewServer(ServerOptions{CreditsPerChannel: credits, BufferSize: 64})
		nch := 1 + rng.IntN(4)
		g := srv.register(GateID{Job: "model"}, nch, nil)
		chans := make([]*inputChannel, nch)
		type item struct {
			d     delivery
			first int // sequence number of its first element
		}
		var (
			seqs     = make([][]item, nch) // what each channel sends, in order
			sentIdx  = make([]int, nch)
			inFlight = make([]int, nch) // credits in use
			next     = make([]int, nch) // next element expected
			total    = make([]int, nch)
			released int
		)
		for i := range chans {
			chans[i] = &inputChannel{index: int32(i), gate: g, bufSize: 64, free: make(chan []byte, credits), kick: make(chan struct{}, 1)}
			n := 0
			for range rng.IntN(40) {
				if rng.IntN(4) == 0 {
					seqs[i] = append(seqs[i], item{d: delivery{ch: chans[i], buf: event.Append(nil, event.Event{Kind: event.KindCancelBarrier, Barrier: event.Barrier{ID: int64(n + 1)}}), event: true}, first: n})
					n++
					continue
				}
				var buf []byte
				k := rng.IntN(4) // 0: an empty buffer
				for j := range k {
					buf = appendRecord(buf, fmt.Appendf(nil, "%d", n+j))
				}
				seqs[i] = append(seqs[i], item{d: delivery{ch: chans[i], buf: buf}, first: n})
				n += k
			}
			seqs[i] = append(seqs[i], item{d: delivery{ch: chans[i], err: io.EOF}, first: n})
			total[i] = n
		}
		woken := make(chan struct{})
		close(woken)
		check := func(d event.Delivery) {
			c := d.Channel
			if g.blocked[c] {
				t.Fatalf("seed %d: blocked channel %d delivered %v", seed, c, d.Kind)
			}
			switch d.Kind {
			case event.DeliverEnd:
				if next[c] != total[c] {
					t.Fatalf("seed %d: channel %d ended after %d of %d elements", seed, c, next[c], total[c])
				}
				next[c]++
				return
			case event.DeliverEvent:
				e, err := event.Decode(d.Data)
				if err != nil || e.Barrier.ID != int64(next[c]+1) {
					t.Fatalf("seed %d: channel %d: event %v %v, want element %d", seed, c, e, err, next[c])
				}
			default:
				if string(d.Data) != fmt.Sprint(next[c]) {
					t.Fatalf("seed %d: channel %d: record %q, want %d", seed, c, d.Data, next[c])
				}
			}
			next[c]++
		}
		returnCredits := func() {
			for i, ch := range chans {
				n := int(ch.pending.Swap(0))
				inFlight[i] -= n
				released += n
			}
		}
		done := false
		for steps := 0; !done; steps++ {
			if steps > 100000 {
				t.Fatalf("seed %d: no progress", seed)
			}
			switch r := rng.IntN(10); {
			case r < 4: // a producer sends, within its credits
				i := rng.IntN(nch)
				if sentIdx[i] < len(seqs[i]) && (inFlight[i] < credits || seqs[i][sentIdx[i]].d.err != nil) {
					it := seqs[i][sentIdx[i]]
					if it.d.err == nil {
						inFlight[i]++
					}
					g.queue <- it.d
					sentIdx[i]++
				}
			case r < 8:
				d, err := g.NextDelivery(context.Background(), woken)
				switch {
				case err == io.EOF:
					done = true
				case errors.Is(err, event.ErrWoken):
				case err != nil:
					t.Fatalf("seed %d: %v", seed, err)
				default:
					check(d)
				}
				returnCredits()
			case r < 9:
				g.Block(rng.IntN(nch))
			default:
				g.Unblock(rng.IntN(nch))
			}
			for i := range nch {
				if g.blocked[i] {
					for _, h := range g.ready {
						if int(h.d.ch.index) == i {
							t.Fatalf("seed %d: ready holds an element of blocked channel %d", seed, i)
						}
					}
				}
				if inFlight[i] > credits {
					t.Fatalf("seed %d: channel %d has %d credits in use", seed, i, inFlight[i])
				}
			}
			if steps > 2000 {
				// Let it finish: everything unblocked.
				for i := range nch {
					g.Unblock(i)
				}
			}
		}
		for i := range nch {
			if next[i] != total[i]+1 {
				t.Fatalf("seed %d: channel %d delivered %d of %d elements and its end", seed, i, next[i], total[i])
			}
		}
		sentBufs := 0
		for i := range nch {
			sentBufs += len(seqs[i]) - 1
		}
		if released != sentBufs {
			t.Fatalf("seed %d: %d credits returned for %d buffers and events", seed, released, sentBufs)
		}
	}
}
