package checkpointbench

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/dataflow"
)

// TestKeyedJobPlans: the bench's job, with and without the filter of the
// state runs, is a valid spec whose last vertex holds the keyed sum (the
// vertex whose read-records the bench counts) and whose first holds the
// generator and the filter (whose write-records say when the keys are in
// state).
func TestKeyedJobPlans(t *testing.T) {
	for _, filter := range []string{"", "id < 1000000 || id % 100 == 0"} {
		s, err := dataflow.ParseSpec(keyedJob(1_000_000, stateRate, filter), nil)
		if err != nil {
			t.Fatalf("filter %q: %v", filter, err)
		}
		p, err := s.PlanWith(dataflow.PlanOptions{DefaultParallelism: 2, MaxParallelism: 128})
		if err != nil {
			t.Fatalf("filter %q: %v", filter, err)
		}
		if len(p.Vertices) != 2 {
			t.Fatalf("filter %q: %d vertices, want 2 (source chain, keyed chain)", filter, len(p.Vertices))
		}
		first, last := p.Vertices[0].Operators, p.Vertices[len(p.Vertices)-1].Operators
		if first[0] != "gen" || (filter != "" && first[1] != "sample") {
			t.Errorf("filter %q: first vertex %v, want the generator (and the filter)", filter, first)
		}
		if last[0] != "total" {
			t.Errorf("filter %q: last vertex %v, want the keyed sum first", filter, last)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
