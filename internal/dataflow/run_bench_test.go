package dataflow

import (
	"context"
	"strconv"
	"testing"
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
