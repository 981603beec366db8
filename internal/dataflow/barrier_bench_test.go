package dataflow

import (
	"context"
	"io"
	"strconv"
	"testing"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// BenchmarkGateBarrier measures the record path of a keyed subtask reading four channels
// with exactly-once checkpoints: a barrier on every channel each 4096 records per channel,
// aligned by blocking (the gate holds what blocked channels deliver, as the network gate
// does), the aggregate's keyed state and the task's list states snapshotted and written.
func BenchmarkGateBarrier(b *testing.B) {
	const records = 1 << 20
	p := mustPlan(b, "name: bench\noperators:\n"+
		"  - {name: g, type: generator, count: 1, keys: 100, parallelism: 4}\n"+
		"  - {name: k, type: key_by, input: g, key: key}\n"+
		"  - {name: a, type: aggregate, input: k, function: sum, field: value, parallelism: 1}\n"+
		"  - {name: b, type: blackhole, input: a}\n", nil, 1)
	if len(p.Vertices) != 2 || p.InputChannels(1) != 4 {
		b.Fatalf("want generator at parallelism 4, then aggregate -> blackhole reading 4 channels")
	}
	enc := make([][]byte, 100)
	for i := range enc {
		enc[i] = AppendRecord(nil, Record{Int(int64(i)), String("key-" + strconv.Itoa(i)), Int(int64(i))})
	}
	cp := &TaskCheckpointing{
		Files: func(checkpoint.Info) (checkpoint.SnapshotFiles, error) { return discardFiles{}, nil },
		Ack:   func(checkpoint.Info, map[string]checkpoint.SubtaskState, CheckpointMetrics) {},
		Decline: func(id int64, reason string) {
			b.Errorf("checkpoint %d declined: %s", id, reason)
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		g := newBarrierGate(4, 4096, records, enc)
		if err := p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: g, Checkpoints: cp}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// barrierGate delivers records round-robin over its channels and, every interval records
// per channel, a barrier on each channel; blocked channels' deliveries are held until
// Unblock. After records records every channel ends.
type barrierGate struct {
	recs     [][]byte
	channels int
	interval int
	left     int // records to deliver
	n        int // records generated
	id       int64
	pending  []event.Delivery // barriers not yet generated, one per channel
	blocked  []bool
	held     [][]event.Delivery
	ready    []event.Delivery
	ended    int
	barrier  []byte
}

func newBarrierGate(channels, interval, records int, recs [][]byte) *barrierGate {
	return &barrierGate{recs: recs, channels: channels, interval: interval, left: records,
		blocked: make([]bool, channels), held: make([][]event.Delivery, channels)}
}

func (g *barrierGate) generate() (event.Delivery, bool) {
	if len(g.pending) > 0 {
		d := g.pending[0]
		g.pending = g.pending[1:]
		return d, true
	}
	if g.n >= g.left {
		if g.ended >= g.channels {
			return event.Delivery{}, false
		}
		g.ended++
		return event.Delivery{Channel: int32(g.ended - 1), Kind: event.DeliverEnd}, true
	}
	ch := g.n % g.channels
	d := event.Delivery{Channel: int32(ch), Kind: event.DeliverRecord, Data: g.recs[g.n%len(g.recs)]}
	g.n++
	if g.n%(g.interval*g.channels) == 0 {
		g.id++
		g.barrier = event.Append(nil, event.Event{Kind: event.KindBarrier, Barrier: event.Barrier{ID: g.id, Timestamp: 1}})
		for c := range g.channels {
			g.pending = append(g.pending, event.Delivery{Channel: int32(c), Kind: event.DeliverEvent, Data: g.barrier})
		}
	}
	return d, true
}

func (g *barrierGate) NextDelivery(context.Context, <-chan struct{}) (event.Delivery, error) {
	for {
		if len(g.ready) > 0 {
			d := g.ready[0]
			g.ready = g.ready[1:]
			return d, nil
		}
		d, ok := g.generate()
		if !ok {
			return event.Delivery{}, io.EOF
		}
		if g.blocked[d.Channel] {
			g.held[d.Channel] = append(g.held[d.Channel], d)
			continue
		}
		return d, nil
	}
}

func (g *barrierGate) Channels() int { return g.channels }
func (g *barrierGate) Block(ch int)  { g.blocked[ch] = true }
func (g *barrierGate) Unblock(ch int) {
	g.blocked[ch] = false
	g.ready = append(g.ready, g.held[ch]...)
	g.held[ch] = g.held[ch][:0]
}

// discardFiles is a snapshot store that keeps nothing.
type discardFiles struct{}

func (discardFiles) Create(name string) (checkpoint.FileWriter, error) {
	return &discardWriter{name: name}, nil
}
func (discardFiles) SharedAllowed() bool { return false }
func (discardFiles) CreateShared(name string) (checkpoint.FileWriter, error) {
	return &discardWriter{name: name}, nil
}

type discardWriter struct {
	name string
	n    int64
}

func (w *discardWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }
func (w *discardWriter) Commit() (checkpoint.FileRef, error) {
	return checkpoint.FileRef{Path: w.name, Size: w.n}, nil
}
func (w *discardWriter) Abort() {}
