package dataflow

import (
	"context"
	"strconv"
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// BenchmarkChain measures the record path of one chained subtask: generator -> map -> filter
// -> blackhole, every operator in one goroutine, as a TaskManager runs a chained vertex.
func BenchmarkChain(b *testing.B) {
	const records = 1 << 20
	p := mustPlan(b, "name: bench\noperators:\n"+
		"  - {name: g, type: generator, count: "+strconv.Itoa(records)+", keys: 100}\n"+
		"  - {name: m, type: map, input: g, fields: {id: id, key: key, v: 'value * 2'}}\n"+
		"  - {name: f, type: filter, input: m, expr: 'v % 3 != 0'}\n"+
		"  - {name: b, type: blackhole, input: f}\n", nil, 1)
	if len(p.Vertices) != 1 {
		b.Fatalf("want one chained vertex, got %d", len(p.Vertices))
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.RunSubtask(context.Background(), 0, 0, TaskIO{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkChainInput measures the record path of a subtask with input: decode, map, filter,
// print-free sink, as a chained vertex after a network edge runs it.
func BenchmarkChainInput(b *testing.B) {
	const records = 1 << 20
	p := mustPlan(b, "name: bench\noperators:\n"+
		"  - {name: g, type: generator, count: 1, keys: 100}\n"+
		"  - {name: k, type: key_by, input: g, key: key}\n"+
		"  - {name: m, type: map, input: k, fields: {id: id, key: key, v: 'value * 2'}}\n"+
		"  - {name: f, type: filter, input: m, expr: 'v % 3 != 0'}\n"+
		"  - {name: b, type: blackhole, input: f}\n", nil, 1)
	if len(p.Vertices) != 2 || len(p.Vertices[1].Operators) != 3 {
		b.Fatalf("want generator, then map -> filter -> blackhole chained: %d vertices", len(p.Vertices))
	}
	benchInputVertex(b, p, records)
}

// benchInputVertex runs vertex 1 of p over records records of 100 keys
// (id, key, value), as a subtask after a network edge, and reports records/s.
func benchInputVertex(b *testing.B, p *Plan, records int) {
	enc := make([][]byte, 100)
	for i := range enc {
		enc[i] = AppendRecord(nil, Record{Int(int64(i)), String("key-" + strconv.Itoa(i)), Int(int64(i))})
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.RunSubtask(context.Background(), 1, 0, TaskIO{Input: &cycleGate{recs: enc, left: records}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// cycleGate delivers its records round and round until left reaches 0.
type cycleGate struct {
	noBlocking
	recs [][]byte
	left int // records
	n    int // elements delivered
}

func (g *cycleGate) NextDelivery(context.Context, <-chan struct{}) (event.Delivery, error) {
	return tailDelivery(&g.n, g.left, false, func(k int) []byte { return g.recs[k%len(g.recs)] })
}

func (g *cycleGate) Channels() int { return 1 }

// BenchmarkAggregate measures a keyed subtask: decode, set the current key in the keyed state
// backend, fold into the aggregate's state.Value, emit one result per key at the end.
func BenchmarkAggregate(b *testing.B) {
	const records = 1 << 20
	p := mustPlan(b, "name: bench\noperators:\n"+
		"  - {name: g, type: generator, count: 1, keys: 100}\n"+
		"  - {name: k, type: key_by, input: g, key: key}\n"+
		"  - {name: a, type: aggregate, input: k, function: sum, field: value}\n"+
		"  - {name: b, type: blackhole, input: a}\n", nil, 1)
	if len(p.Vertices) != 2 || len(p.Vertices[1].Operators) != 2 {
		b.Fatalf("want generator, then aggregate -> blackhole chained: %d vertices", len(p.Vertices))
	}
	benchInputVertex(b, p, records)
}

// BenchmarkWindow measures a keyed window subtask like BenchmarkAggregate: per record the
// window's accumulator is read and rewritten under the window's namespace and its timer
// registered (processing time, as the benchmark's records carry no timestamps).
func BenchmarkWindow(b *testing.B) {
	const records = 1 << 20
	p := mustPlan(b, "name: bench\noperators:\n"+
		"  - {name: g, type: generator, count: 1, keys: 100}\n"+
		"  - {name: k, type: key_by, input: g, key: key}\n"+
		"  - {name: w, type: window, input: k, tumbling: 1h, time: processing, function: sum, field: value}\n"+
		"  - {name: b, type: blackhole, input: w}\n", nil, 1)
	if len(p.Vertices) != 2 || len(p.Vertices[1].Operators) != 2 {
		b.Fatalf("want generator, then window -> blackhole chained: %d vertices", len(p.Vertices))
	}
	benchInputVertex(b, p, records)
}
